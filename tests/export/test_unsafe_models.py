"""`load_inference_model` on unsafe (Lambda) and damaged model files: a RunError naming the file.

What each command prints for such files (predict --run/--artifact and export: one `error:`
line, exit status 2, nothing written, no code run), together with the other hostile inputs,
is tested in one corpus: tests/test_hostile_inputs.py.
"""

import zipfile

import pytest

from dlkeras.errors import RunError
from dlkeras.models import load_inference_model


def double(values):
    return values * 2


def save_lambda_model(path, function=None):
    """A tiny functional model with a Lambda layer (refused by safe mode)."""
    import keras

    inputs = keras.Input((3,), name="features")
    doubled = keras.layers.Lambda(function or (lambda x: x * 2), name="doubled")(inputs)
    outputs = keras.layers.Dense(2, activation="softmax", name="head")(doubled)
    keras.Model(inputs, outputs, name="with_lambda").save(path)


@pytest.mark.parametrize("function", [None, double], ids=["lambda", "named_function"])
def test_a_lambda_layer_is_refused_before_keras_reads_it(function, tmp_path):
    save_lambda_model(tmp_path / "named.keras", function)
    with pytest.raises(RunError, match=r"named\.keras holds Lambda layer\(s\) doubled.*never loads code"):
        load_inference_model(tmp_path / "named.keras")


def test_truncated_and_damaged_archives_are_corrupt(tmp_path):
    import keras

    inputs = keras.Input((3,), name="features")
    keras.Model(inputs, keras.layers.Dense(2, name="head")(inputs)).save(tmp_path / "good.keras")
    whole = (tmp_path / "good.keras").read_bytes()
    (tmp_path / "truncated.keras").write_bytes(whole[: len(whole) // 2])
    with zipfile.ZipFile(tmp_path / "good.keras") as source, \
            zipfile.ZipFile(tmp_path / "no_weights.keras", "w") as damaged:
        damaged.writestr("config.json", source.read("config.json"))
    for name in ("truncated.keras", "no_weights.keras"):
        with pytest.raises(RunError, match=f"{name} is corrupt, truncated or not a dlkeras model"):
            load_inference_model(tmp_path / name)
    with pytest.raises(RunError, match="missing.keras does not exist"):
        load_inference_model(tmp_path / "missing.keras")
    assert load_inference_model(tmp_path / "good.keras").name  # the good one still loads
