"""Request bodies -> instances, and the errors that name the fix (no server needed)."""

import pytest

from dlkeras.serving.request import RequestError, instances_to_columns, parse_predict


def test_row_and_columnar_bodies():
    assert parse_predict(b'{"instances": ["a", "b"]}', 8) == (["a", "b"], False)
    assert parse_predict(b'{"inputs": {"text": ["a", "b"], "n": [1, 2]}}', 8) == (
        [{"text": "a", "n": 1}, {"text": "b", "n": 2}], True)
    assert parse_predict(b'{"inputs": ["a"], "signature_name": "serving_default"}', 8) == (["a"], True)


def test_columnar_outputs():
    predictions = [{"label": "a", "p": 1}, {"label": "b", "p": 2}]
    assert instances_to_columns(predictions) == {"label": ["a", "b"], "p": [1, 2]}


@pytest.mark.parametrize("body, words", [
    (b"\xff\xfe", "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    (b'"text"', "is a JSON string, not an object"),
    (b'{"instances": [1], "inputs": [1]}', "not both"),
    (b'{"inputs": 3}', '"inputs" must be'),
    (b'{"inputs": {"a": 3}}', "one value per input"),
    (b'{"instances": [1], "signature_name": "predict"}', "unknown signature_name"),
    (b'{"instances": [1, 2, 3]}', "more than the limit of 2"),
])
def test_bad_bodies(body, words):
    with pytest.raises(RequestError, match=words.replace("(", r"\(")) as raised:
        parse_predict(body, 2)
    assert raised.value.status == 400
