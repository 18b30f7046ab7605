"""A SavedModel client that uses only TensorFlow (and TensorFlow Text's ops for text models).

    python tf_client.py REQUESTS.json

REQUESTS.json holds a list of {"folder": SavedModel folder, "inputs": {name: values}}; values
are nested lists, and a {"b64": ...} value is base64-decoded (as TF Serving's REST API does for
inputs whose name ends in "_bytes"). Prints a JSON list: each request's named outputs of
`serving_default`, or {"error": message}. Imports neither dlkeras nor keras-hub (the test that
runs it checks that the answer says so).
"""

import base64
import json
import sys

import tensorflow as tf

try:
    import tensorflow_text  # noqa: F401  (registers the ops of text models' tokenizers)
except ImportError:
    pass


def decoded(value):
    if isinstance(value, dict) and "b64" in value:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [decoded(item) for item in value]
    return value


def answer(request: dict) -> dict:
    function = tf.saved_model.load(request["folder"]).signatures["serving_default"]
    specs = function.structured_input_signature[1]
    try:
        outputs = function(**{name: tf.constant(decoded(request["inputs"][name]), specs[name].dtype)
                              for name in specs})
    except tf.errors.InvalidArgumentError as error:
        return {"error": error.message}
    return {name: (value.numpy().astype(str) if value.dtype == tf.string else value.numpy()).tolist()
            for name, value in outputs.items()}


def main() -> None:
    requests = json.loads(open(sys.argv[1], encoding="utf-8").read())
    answers = [answer(request) for request in requests]
    imported = sorted(name for name in ("dlkeras", "keras_hub") if name in sys.modules)
    print(json.dumps({"answers": answers, "imported": imported}))


if __name__ == "__main__":
    main()
