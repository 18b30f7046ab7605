"""The SavedModel's raw-input signature, read by TensorFlow's own tools and a TensorFlow-only client."""

import base64
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support import FAMILIES

from dlkeras import data
from dlkeras.data import raw_graph
from dlkeras.data.raw import load_preprocessing
from dlkeras.export import parity
from dlkeras.runs import RunDir

CLIENT = Path(__file__).with_name("tf_client.py")
EXAMPLES = 6


def tensorflow_only(requests: list[dict], tmp_path) -> list[dict]:
    """The answers of `tf_client.py` (a fresh interpreter with only TensorFlow) to `requests`."""
    path = tmp_path / "requests.json"
    path.write_text(json.dumps(requests))
    done = subprocess.run([sys.executable, str(CLIENT), str(path)], capture_output=True, text=True,
                          timeout=300, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["imported"] == [], "the client must not import dlkeras or keras-hub"
    return answer["answers"]


def as_json(feed: dict) -> dict:
    """A raw feed as JSON values: bytes as {"b64": ...}, as TF Serving's REST API takes them."""
    def value(item):
        if isinstance(item, bytes):
            return {"b64": base64.b64encode(item).decode()}
        return item.item() if isinstance(item, np.generic) else item

    return {name: [value(v) if np.ndim(v) == 0 else [value(x) for x in v] for v in values]
            for name, values in feed.items()}


@pytest.fixture(scope="module")
def examples(exported, trained):
    """recipe -> (SavedModel folder, raw feed, Keras outputs, signature, test split, indices)."""
    from dlkeras.models import load_inference_model

    found = {}
    for name, run in trained.items():
        folder = Path(exported[name]["folder"])
        recipe = RunDir.load_finished(run)[1]
        datasets = data.build(recipe.data, recipe.train.seed, preset=recipe.model.preset)
        preprocessing = load_preprocessing(folder)
        signature = raw_graph.build_raw_signature(preprocessing, folder)
        feed = parity.raw_feeds(datasets, signature, EXAMPLES, EXAMPLES)[0]
        inputs = parity.test_batches(datasets, preprocessing, folder, EXAMPLES, EXAMPLES)[0][0]
        keras_outputs = np.asarray(load_inference_model(folder / "model.keras").predict_on_batch(inputs))
        chosen = parity.chosen_examples(len(datasets.splits["test"].y), EXAMPLES)
        found[name] = (folder / "saved_model", feed, keras_outputs, signature,
                       datasets.splits["test"], chosen, preprocessing)
    return found


def test_saved_model_cli_shows_the_raw_and_the_model_input_signatures(exported):
    tool = Path(sys.executable).with_name("saved_model_cli")
    folder = Path(exported["bert_tickets"]["folder"]) / "saved_model"
    shown = subprocess.run([str(tool), "show", "--dir", str(folder), "--all"], capture_output=True,
                           text=True, timeout=120, env={"TF_CPP_MIN_LOG_LEVEL": "3"}).stdout
    raw_at = shown.index("signature_def['serving_default']")  # listed after model_inputs
    raw = shown[raw_at:]
    assert "inputs['text']" in raw and "DT_STRING" in raw
    assert "outputs['probabilities']" in raw and "outputs['label']" in raw
    tokens = shown[shown.index("signature_def['model_inputs']"):raw_at]
    assert "inputs['token_ids']" in tokens and "inputs['padding_mask']" in tokens


def bad_requests(examples) -> list[dict]:
    """One raw request per way of being wrong, each with the reason it must be refused for."""
    def broken(name, change, reason):
        folder, feed = examples[name][0], as_json(examples[name][1])
        change(feed)
        return {"folder": str(folder), "inputs": feed, "reason": reason}

    def gap(feed):  # one series skips a day
        feed["date"][0] = feed["date"][0][:2] + feed["date"][0][3:] + ["2099-01-01"]

    numeric = next(n for n, s in examples["mlp_churn"][3].spec.items() if s.dtype.name == "float64")
    return [
        broken("bert_tickets", lambda feed: feed["text"].__setitem__(0, "   "), "non-empty"),
        broken("lstm_sales", gap, "consecutive days"),
        broken("lstm_sales", lambda feed: feed["date"][0].__setitem__(0, "2023-02-30"),
               "does not exist"),
        broken("effnet_defects",
               lambda feed: feed["image_bytes"].__setitem__(0, {"b64": "bm90IGFuIGltYWdl"}),
               "Unknown image file format"),
        broken("mlp_churn", lambda feed: feed[numeric].__setitem__(0, float("inf")), "not finite"),
    ]


@pytest.fixture(scope="module")
def client(examples, tmp_path_factory):
    """(the families' names, their answers, the bad requests, their answers): one
    TensorFlow-only interpreter answers the requests of both tests below."""
    names = sorted(FAMILIES)
    good = [{"folder": str(examples[n][0]), "inputs": as_json(examples[n][1])} for n in names]
    bad = bad_requests(examples)
    answers = tensorflow_only([*good, *({k: v for k, v in r.items() if k != "reason"} for r in bad)],
                              tmp_path_factory.mktemp("client"))
    return names, answers[:len(good)], bad, answers[len(good):]


def test_a_tensorflow_only_client_gets_what_the_keras_model_gives(examples, client):
    names, answers, _, _ = client
    for name, answer in zip(names, answers, strict=True):
        _, _, keras_outputs, signature, test, chosen, preprocessing = examples[name]
        assert "error" not in answer, (name, answer)
        outputs = {key: np.asarray(value) for key, value in answer.items()}
        np.testing.assert_allclose(signature.comparable(outputs), keras_outputs, atol=1e-5, err_msg=name)
        if "label" in outputs:
            classes = np.array(preprocessing["class_names"])
            assert list(outputs["label"]) == list(classes[keras_outputs.argmax(1)]), name
        else:  # forecasts: the days after each window, in original units
            first = test.raw.first_dates[chosen]
            ahead = first[:, None] + np.arange(preprocessing["horizon_days"])[None, :]
            assert outputs["date"].tolist() == ahead.astype(str).tolist()
            mean, std = preprocessing["scaler"][preprocessing["target_column"]]
            np.testing.assert_allclose(outputs["forecast"], keras_outputs * std + mean, rtol=1e-5)


def test_bad_raw_inputs_are_refused_with_their_reason(client):
    _, _, requests, answers = client
    assert len(answers) == len(requests)
    for request, answer in zip(requests, answers, strict=True):
        assert "error" in answer and request["reason"] in answer["error"], answer


def test_a_test_split_with_no_encoded_form_is_reported_unchecked_not_failed():
    from types import SimpleNamespace

    from dlkeras.data.images import encode_png
    from dlkeras.errors import DataError
    from dlkeras.export.run import gate_raw_signature
    from dlkeras.export.summary import _raw_signature_line

    with pytest.raises(DataError, match="whole pixel values"):
        encode_png(np.full((4, 4), 0.5))
    def feed(split, index):
        return {"image_bytes": [encode_png(split.raw[i]) for i in index]}

    signature = SimpleNamespace(feed=feed)
    test = SimpleNamespace(y=np.zeros(3), raw=np.full((3, 4, 4), 0.25))
    check = {"passed": True, "max_abs_difference": 0.0}
    gated = gate_raw_signature("saved_model", Path("unread"), check, signature,
                               SimpleNamespace(splits={"test": test}), ("classification", None, None), 0)
    assert gated["passed"] and gated["raw_signature"]["checked"] is False
    line = _raw_signature_line({**gated, "signatures": {"serving_default": ["image_bytes"]}})
    assert "was not fed the test examples: image arrays" in line
