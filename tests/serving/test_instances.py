"""Table rows: the fast check of plain rows agrees with the full checks (no server needed)."""

import json

import numpy as np
import pytest

from dlkeras.serving import instances
from dlkeras.serving.instances import Scratch, check_row, classify, decode_row
from dlkeras.serving.request import RequestError

PREPROCESSING = {"numeric": {"tenure": [30.0, 20.0], "charges": [60.0, 15.0]},
                 "categorical": {"contract": ["monthly", "yearly"]}}
PLAIN = {"tenure": 3, "charges": 70.5, "contract": "monthly"}


def verdict(check, instance):
    """None when `check` accepts the instance, else its message."""
    try:
        check(instance)
    except RequestError as error:
        return str(error)
    return None


ROWS = [
    PLAIN,
    PLAIN | {"extra": "kept"},
    PLAIN | {"contract": None},
    PLAIN | {"contract": "never seen"},
    PLAIN | {"tenure": "3.5"},
    PLAIN | {"tenure": True},
    PLAIN | {"tenure": float("nan")},
    PLAIN | {"tenure": float("inf")},
    PLAIN | {"charges": -float("inf")},
    PLAIN | {"charges": json.loads("1e400")},
    PLAIN | {"tenure": 10**400},
    PLAIN | {"tenure": None},
    PLAIN | {"tenure": "three"},
    PLAIN | {"extra": [1, 2]},
    {"tenure": 3, "charges": 70.5},
    [3, 70.5, "monthly"],
    "tenure=3",
]


@pytest.mark.parametrize("row", ROWS, ids=range(len(ROWS)))
def test_decode_row_gives_the_full_checks_verdict(row):
    def full(instance):
        check_row(instance, "instance 0", PREPROCESSING)

    def decoded(instance):
        assert decode_row(instance, "instance 0", PREPROCESSING, Scratch()) is instance

    assert verdict(decoded, row) == verdict(full, row)


def test_plain_rows_skip_the_full_checks(monkeypatch):
    checked = []
    monkeypatch.setattr(instances, "check_row", lambda *args: checked.append(args))
    for row in ROWS[:4]:
        decode_row(row, "instance 0", PREPROCESSING, Scratch())
    assert checked == []
    decode_row(PLAIN | {"tenure": "3.5"}, "instance 0", PREPROCESSING, Scratch())
    assert len(checked) == 1


def test_classify_names_the_most_probable_class():
    class Model:
        preprocessing = {"class_names": ["no", "yes"]}

        def convert(self, raw):
            return np.asarray(raw, dtype=np.float32)

        def predict(self, features):
            return np.stack([1 - features, features], axis=1)

    predictions = classify(Model(), [0.2, 0.9])
    assert [p["label"] for p in predictions] == ["no", "yes"]
    assert predictions[1]["probabilities"] == pytest.approx({"no": 0.1, "yes": 0.9})
    assert all(type(v) is float for p in predictions for v in p["probabilities"].values())
