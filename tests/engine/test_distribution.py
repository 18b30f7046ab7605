"""train.distribution: data-parallel runs match one device, and unsupported modes are refused."""

import json

import pytest

from dlkeras.engine import distribution
from dlkeras.errors import ConfigError
from dlkeras.runs import read_history

# mlp_churn on 640 rows: 448 train / 96 val / 96 test; every batch of 64 (and the last
# validation batch of 32) splits evenly over 4 devices, so nothing is cut (see fit_batches)
SMALL = ["--recipe", "mlp_churn", "--set", "data.max_examples=640", "--set", "model.units=(16,)",
         "--set", "train.epochs=3", "--set", "data.batch_size=64",
         "--set", "callbacks.tensorboard=False"]


def _train(cli, out, backend, devices, mode, extra=()):
    env = {"KERAS_BACKEND": backend}
    if devices:
        env[distribution.CPU_DEVICES_VARIABLE] = str(devices)
    result = cli([*SMALL, *extra, "--set", f"train.distribution={mode}", "--out", str(out)],
                 env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = out.glob("mlp_churn-*")
    return run, result.stdout


# The same batches (each epoch's order comes from seed and epoch alone) and, on JAX, dropout
# masks drawn for the global batch: the curves agree to 2e-3. Each MirroredStrategy replica
# draws its own dropout masks, so the TensorFlow comparison runs without dropout (its
# BatchNormalization statistics are global during the fit, see distribution.fitting).
@pytest.mark.parametrize("backend,devices,extra", [
    ("jax", 4, ()), ("tensorflow", 2, ("--set", "model.dropout=0.0"))])
def test_data_parallel_follows_the_single_device_loss_curve(backend, devices, extra, tmp_path, cli):
    """Same global batch on N devices and on one: per-epoch losses agree to 2e-3 (relative)."""
    one, _ = _train(cli, tmp_path / "one", backend, 0, "none", extra)
    many, stdout = _train(cli, tmp_path / "many", backend, devices, "data_parallel", extra)
    assert f"{devices} replica(s); global batch 64 ({64 // devices} per replica)" in stdout
    recorded = json.loads((many / "env.json").read_text())["distribution"]
    assert recorded["replicas"] == devices and recorded["global_batch_size"] == 64
    single, parallel = read_history(one / "history.csv"), read_history(many / "history.csv")
    assert len(single) == len(parallel) == 3
    for a, b in zip(single, parallel, strict=True):
        assert float(b["loss"]) == pytest.approx(float(a["loss"]), rel=2e-3)
        assert float(b["val_loss"]) == pytest.approx(float(a["val_loss"]), rel=2e-3)
    assert float(single[-1]["loss"]) < float(single[0]["loss"])
    metrics = json.loads((many / "metrics.json").read_text())
    assert metrics["model"]["examples"] == 96


def test_fit_batches_cut_each_batch_to_a_multiple_of_the_devices(monkeypatch):
    import numpy as np
    import tensorflow as tf

    class Mesh:
        devices = np.zeros(4)

    four = type("Four", (), {"device_mesh": Mesh, "num_processes": 1})()
    monkeypatch.setattr(distribution, "_DISTRIBUTION", four)
    rows = np.arange(93)
    batches = tf.data.Dataset.from_tensor_slices((rows, rows * 10)).batch(64)
    batches = batches.concatenate(tf.data.Dataset.from_tensor_slices((rows[:3], rows[:3])).batch(3))
    cut = [(x.numpy(), y.numpy()) for x, y in distribution.fit_batches(batches)]
    assert [len(x) for x, _ in cut] == [64, 28]  # 29 -> 28; the batch of 3 is dropped whole
    assert (cut[1][0] == rows[64:92]).all() and (cut[1][1] == rows[64:92] * 10).all()


@pytest.mark.parametrize("mode,backend,names", [
    ("data_parallel", "torch", "KERAS_BACKEND=jax or KERAS_BACKEND=tensorflow"),
    ("multi_worker", "torch", "KERAS_BACKEND=jax"),
    ("multi_worker", "tensorflow", "KERAS_BACKEND=jax"),
])
def test_unsupported_modes_are_refused_naming_a_backend_that_works(mode, backend, names):
    with pytest.raises(ConfigError, match=names):
        distribution.check_supported(mode, backend)


def test_refusal_exits_2_before_any_work(tmp_path, cli):
    result = cli([*SMALL, "--set", "train.distribution=data_parallel", "--out", str(tmp_path)],
                 env={"KERAS_BACKEND": "torch"})
    assert result.returncode == 2
    assert "error: train.distribution='data_parallel' on the torch backend" in result.stderr
    assert "Traceback" not in result.stderr and not any(tmp_path.iterdir())


def test_a_smaller_last_batch_is_padded_to_the_full_size_and_cut_back():
    import numpy as np

    seen = []

    def predict(inputs):
        seen.append({name: array.shape for name, array in inputs.items()})
        return {"sum": inputs["a"].sum(axis=1), "first": inputs["b"][:, 0]}

    call = distribution.in_full_batches(predict)
    rng = np.random.default_rng(0)
    batches = [{"a": rng.normal(size=(n, 3)), "b": rng.normal(size=(n, 2))} for n in (8, 8, 3, 1)]
    outputs = [call(batch) for batch in batches]
    assert seen == [{"a": (8, 3), "b": (8, 2)}] * 4  # one shape: one compiled program
    for batch, output in zip(batches, outputs, strict=True):
        np.testing.assert_array_equal(output["sum"], batch["a"].sum(axis=1))
        np.testing.assert_array_equal(output["first"], batch["b"][:, 0])


def test_a_model_predicted_in_batches_traces_its_predict_function_once_on_tensorflow():
    import keras
    import numpy as np

    if keras.backend.backend() != "tensorflow":
        pytest.skip("counts the traces of a TensorFlow predict function")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    rows = np.random.default_rng(0).normal(size=(21, 4)).astype("float32")
    outputs = distribution.predict_batches(model, [rows[:8], rows[8:16], rows[16:]])
    assert model.predict_function.experimental_get_tracing_count() == 1  # not again for 5 rows
    np.testing.assert_allclose(np.concatenate(outputs), model.predict_on_batch(rows), atol=1e-6)
