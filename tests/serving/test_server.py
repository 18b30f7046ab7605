"""python -m dlkeras.serve over real HTTP: every route, every raw-input kind, every bad request."""

import base64
import io
import json
import threading
import time

import numpy as np
import pytest
from support import run_cli

from dlkeras.data.raw import RawInputs
from dlkeras.export import artifacts


def direct(exports, name, raw):
    """The probabilities the exported ONNX model gives `raw`, without the server."""
    model = artifacts.load_artifact(exports / name / "1" / "model.onnx")
    return np.asarray(model.predict(RawInputs(model.preprocessing, model.folder)(raw)))


def png(seed: int, side: int = 28) -> bytes:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (side, side), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_health_readiness_and_model_list(server):
    assert server.get("/healthz") == (200, {"status": "ok"})
    status, ready = server.get("/readyz")
    assert status == 200 and sorted(ready["models"]) == [
        "bert_tickets:1", "cnn_digits:1", "lstm_sales:1", "mlp_churn:1"]
    models = {m["name"]: m for m in server.get("/v1/models")[1]["models"]}
    assert models["lstm_sales"]["task"] == "forecast" and models["mlp_churn"]["format"] == "onnx"


def test_model_status_and_metadata_follow_tf_serving(server):
    available = [{"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]
    assert server.get("/v1/models/mlp_churn") == (200, {"model_version_status": available})
    assert server.get("/v1/models/mlp_churn/versions/1") == (200, {"model_version_status": available})
    status, metadata = server.get("/v1/models/bert_tickets/versions/1/metadata")
    assert status == 200 and metadata["model_spec"] == {"name": "bert_tickets", "signature_name": "",
                                                        "version": "1"}
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["text"]["dtype"] == "DT_STRING"
    assert signature["outputs"]["probabilities"]["tensor_shape"]["dim"][1]["size"] == "3"
    assert metadata["metadata"]["dlkeras"]["class_names"] == ["negative", "neutral", "positive"]


def test_texts_answer_like_the_exported_model(server, exports):
    texts = ["my bag never arrived", "thanks, great crew"]
    status, answer = server.post("/v1/models/bert_tickets:predict",
                                 {"instances": [texts[0], {"text": texts[1]}]})
    assert status == 200, answer
    expected = direct(exports, "bert_tickets", texts)
    for prediction, row in zip(answer["predictions"], expected):
        probabilities = prediction["probabilities"]
        assert list(probabilities) == ["negative", "neutral", "positive"]
        np.testing.assert_allclose(list(probabilities.values()), row, atol=1e-6)
        assert prediction["label"] == max(probabilities, key=probabilities.get)
    status, columnar = server.post("/v1/models/bert_tickets/versions/1:predict",
                                   {"inputs": {"text": texts}, "signature_name": "serving_default"})
    assert status == 200 and columnar["outputs"]["label"] == [p["label"] for p in answer["predictions"]]


def test_table_rows_answer_like_the_exported_model(server, exports):
    import pandas as pd

    from dlkeras.data.sources import load_wa_churn

    frame = load_wa_churn().head(3)
    rows = json.loads(frame.to_json(orient="records"))
    status, answer = server.post("/v1/models/mlp_churn:predict", {"instances": rows})
    assert status == 200, answer
    expected = direct(exports, "mlp_churn", pd.DataFrame.from_records(rows))
    served = [list(p["probabilities"].values()) for p in answer["predictions"]]
    np.testing.assert_allclose(served, expected, atol=1e-6)
    example = server.get("/v1/models/mlp_churn/metadata")[1]["metadata"]["dlkeras"]["example"]
    assert server.post("/v1/models/mlp_churn:predict", {"instances": [example]})[0] == 200


def test_base64_images_answer_like_the_exported_model(server, exports, tmp_path):
    images = [png(0), png(1)]
    status, answer = server.post("/v1/models/cnn_digits:predict", {"instances": [
        {"b64": base64.b64encode(images[0]).decode()},
        {"image": {"b64": base64.b64encode(images[1]).decode()}},
    ]})
    assert status == 200, answer
    paths = [tmp_path / f"{i}.png" for i in range(2)]
    for path, content in zip(paths, images):
        path.write_bytes(content)
    expected = direct(exports, "cnn_digits", [str(p) for p in paths])
    served = [list(p["probabilities"].values()) for p in answer["predictions"]]
    np.testing.assert_allclose(served, expected, atol=1e-6)


def test_forecasts_from_recent_days_and_from_the_export(server, exports):
    import pandas as pd

    preprocessing = json.loads((exports / "lstm_sales" / "1" / "preprocessing.json").read_text())
    latest = preprocessing["latest"]
    status, answer = server.post("/v1/models/lstm_sales:predict", {"instances": [
        {}, {"date": latest["dates"], "revenue": latest["revenue"]},
        [{"date": d, "revenue": v * 2} for d, v in zip(latest["dates"], latest["revenue"])],
    ]})
    assert status == 200, answer
    own, sent, doubled = answer["predictions"]
    first = pd.Timestamp(latest["dates"][-1]) + pd.Timedelta(days=1)
    assert own["dates"] == [str(d.date()) for d in pd.date_range(first, periods=7)]
    assert own == sent and np.isfinite(own["values"]).all()
    assert doubled["values"] != own["values"]


BAD = [  # (path, body, status, words the message must hold)
    ("/v1/models/mlp_churn:predict", b'{"instances": [1', 400, "not valid JSON"),
    ("/v1/models/mlp_churn:predict", b"", 400, "body is empty"),
    ("/v1/models/mlp_churn:predict", [1, 2], 400, "not an object"),
    ("/v1/models/mlp_churn:predict", {"instance": [1]}, 400, 'did you mean "instances"'),
    ("/v1/models/mlp_churn:predict", {"rows": [1]}, 400, "unknown field"),
    ("/v1/models/mlp_churn:predict", {"signature_name": "serving_default"}, 400, 'no "instances"'),
    ("/v1/models/mlp_churn:predict", {"instances": {"tenure": 3}}, 400, "must be a list"),
    ("/v1/models/mlp_churn:predict", {"instances": []}, 400, "no instances"),
    ("/v1/models/mlp_churn:predict", {"instances": [{}] * 9}, 400, "more than the limit of 8"),
    ("/v1/models/mlp_churn:predict", {"inputs": {"a": [1], "b": [1, 2]}}, 400, "one value per input"),
    ("/v1/models/mlp_churn:predict", {"instances": [1]}, 400, "instance 0: a table row is a JSON object"),
    ("/v1/models/mlp_churn:predict", {"instances": [{"tenure": 3}]}, 400, "lacks column(s)"),
    ("/v1/models/bert_tickets:predict", {"instances": ["fine", 3]}, 400, "instance 1: expected a text"),
    ("/v1/models/bert_tickets:predict", {"instances": ["  "]}, 400, "text is empty"),
    ("/v1/models/bert_tickets:predict", {"instances": ["x" * 300_000]}, 413, "over the limit"),
    ("/v1/models/cnn_digits:predict", {"instances": [{"b64": "@@"}]}, 400, "not valid base64"),
    ("/v1/models/cnn_digits:predict", {"instances": [{"b64": "aGVsbG8="}]}, 400, "cannot be decoded"),
    ("/v1/models/cnn_digits:predict", {"instances": ["digit.png"]}, 400, '{"b64":'),
    ("/v1/models/lstm_sales:predict", {"instances": [{"date": ["2024-01-01"], "revenue": [1]}]}, 400,
     "send at least 30 days"),
    ("/v1/models/lstm_sales:predict", {"instances": [{"day": ["2024-01-01"]}]}, 400, "lack column(s)"),
    ("/v1/models/churn:predict", {"instances": [{}]}, 404, "no model named 'churn'"),
    ("/v1/models/mlp_churn/versions/2:predict", {"instances": [{}]}, 404, "no version 2"),
    ("/v1/models/mlp_churn/versions/two:predict", {"instances": [{}]}, 400, "not a whole number"),
    ("/v1/models/mlp_churn/versions/9", None, 404, "no version 9"),
    ("/v1/models/mlp_churn:predict", None, 405, "answers POST requests"),
    ("/v2/models", None, 404, "no route"),
]


@pytest.mark.parametrize("path, body, status, words", BAD,
                         ids=[f"{i}-{bad[3][:24]}" for i, bad in enumerate(BAD)])
def test_bad_requests_get_an_error_naming_the_fix(server, path, body, status, words):
    answer = server.request(path, body, method="POST" if body is not None else "GET")
    assert answer[0] == status, answer
    assert words in answer[1]["error"], answer[1]
    assert server.get("/healthz")[0] == 200  # and the server lives on


def test_a_bad_request_among_concurrent_ones_fails_alone(server):
    example = server.get("/v1/models/mlp_churn/metadata")[1]["metadata"]["dlkeras"]["example"]
    bodies = [{"instances": [example]}] * 5 + [{"instances": [{**example, "contract": ["x"]}]}]
    answers = [None] * len(bodies)

    def send(i):
        answers[i] = server.post("/v1/models/mlp_churn:predict", bodies[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a[0] for a in answers] == [200] * 5 + [400]


def test_a_repeated_instance_is_a_cache_hit(server):
    labels = {"model": "bert_tickets:1"}
    hits, misses = server.metric("dlkeras_serve_cache_hits_total", **labels), \
        server.metric("dlkeras_serve_cache_misses_total", **labels)
    body = {"instances": [f"cache me {time.time()}"]}
    first, second = server.post("/v1/models/bert_tickets:predict", body), \
        server.post("/v1/models/bert_tickets:predict", body)
    assert first == second and first[0] == 200
    assert server.metric("dlkeras_serve_cache_hits_total", **labels) == hits + 1
    assert server.metric("dlkeras_serve_cache_misses_total", **labels) == misses + 1
    assert server.metric("dlkeras_serve_request_seconds_count", **labels) >= 2
    assert server.metric("dlkeras_serve_batch_size_count", **labels) >= 1
    assert server.metric("dlkeras_serve_requests_total", endpoint="predict", code="200", **labels) >= 2
    assert server.metric("dlkeras_serve_errors_total", code="404", model="") >= 1
    assert server.metric("process_resident_memory_bytes") > 0


def test_sigterm_lets_a_queued_request_finish_then_exits_0(exports, start_server):
    running = start_server(exports / "mlp_churn", "--max-wait-ms", "3000")
    example = running.get("/v1/models/mlp_churn/metadata")[1]["metadata"]["dlkeras"]["example"]
    answer = []
    client = threading.Thread(target=lambda: answer.append(
        running.post("/v1/models/mlp_churn:predict", {"instances": [example]})))
    client.start()
    deadline = time.monotonic() + 30
    while running.metric("dlkeras_serve_queued_instances") < 1:  # waiting in its micro-batch
        assert time.monotonic() < deadline, running.output
        time.sleep(0.02)
    assert running.stop() == 0, running.output
    client.join(30)
    assert answer and answer[0][0] == 200, answer
    assert "drained and stopped" in running.output


@pytest.mark.parametrize("args, words", [
    (["{missing}"], "is not a folder"),
    (["{empty}"], "holds no exported model"),
    (["{exports}/mlp_churn", "--format", "tflite"], "has no tflite artifact"),
    (["{exports}", "--max-batch-size", "0"], "--max-batch-size 0"),
])
def test_startup_mistakes_exit_2_with_the_fix(exports, tmp_path, args, words):
    (tmp_path / "empty").mkdir()
    names = {"missing": tmp_path / "missing", "empty": tmp_path / "empty", "exports": exports}
    result = run_cli([arg.format(**names) for arg in args], module="dlkeras.serve", timeout=120)
    assert result.returncode == 2 and words in result.stderr, result.stderr


def test_a_port_in_use_is_refused(server, exports):
    port = server.url.rsplit(":", 1)[1]
    result = run_cli([str(exports), "--port", port], module="dlkeras.serve", timeout=120)
    assert result.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in result.stderr, result.stderr
