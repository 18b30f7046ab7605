"""engine.gradients: the same loss and gradients on every backend, and no change to the model."""

import json
import os
import sys

import numpy as np
import prestart
import pytest

SCRIPT = """
import json, numpy as np, keras
from dlkeras.engine.gradients import loss_and_gradients
inputs = keras.Input((3,))
hidden = keras.layers.Dense(4, activation="tanh", name="hidden")(inputs)
hidden = keras.layers.BatchNormalization(name="norm")(hidden)
outputs = keras.layers.Dense(2, activation="softmax", name="head")(hidden)
model = keras.Model(inputs, outputs)
low = {5: 0.5}  # the moving variance stays positive
model.set_weights([np.linspace(low.get(i, -1), 1.5, w.size, dtype="float32").reshape(w.shape)
                   for i, w in enumerate(model.get_weights())])
before = [w.copy() for w in model.get_weights()]
x = np.linspace(-2, 2, 15, dtype="float32").reshape(5, 3)
y = np.eye(2, dtype="float32")[[0, 1, 1, 0, 1]]
loss, grads = loss_and_gradients(model, keras.losses.CategoricalCrossentropy(), x, y)
unchanged = all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
# two layers of the same shapes, one trainable and then the other (as stages freeze and
# unfreeze): each call differentiates the layer that trains now
pair = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, name="a"), keras.layers.Dense(2, name="b")])
pair.set_weights([np.linspace(-1, 1, w.size, dtype="float32").reshape(w.shape) * (i + 1)
                  for i, w in enumerate(pair.get_weights())])
swapped, mse = [], keras.losses.MeanSquaredError()  # one loss: one model, loss and mode
for frozen in ("a", "b"):
    for layer in pair.layers:
        layer.trainable = layer.name != frozen
    swapped.append(loss_and_gradients(pair, mse, x[:, :2], y))
print(json.dumps({"loss": loss, "grads": [g.tolist() for g in grads], "unchanged": unchanged,
                  "swapped": [[value, [g.tolist() for g in found]] for value, found in swapped]}))
"""


def gradients_on(backend: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = prestart.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def tensorflow_result():
    return gradients_on("tensorflow")


def test_gradients_match_finite_differences_and_leave_the_model_unchanged(tensorflow_result):
    import keras

    from dlkeras.engine.gradients import loss_and_gradients

    namespace = {}
    exec(SCRIPT.split("before =")[0], namespace)  # the same model and weights, in this process
    model = namespace["model"]
    x = np.linspace(-2, 2, 15, dtype="float32").reshape(5, 3)
    y = np.eye(2, dtype="float32")[[0, 1, 1, 0, 1]]
    loss_fn = keras.losses.CategoricalCrossentropy()
    kernel = model.get_layer("hidden").kernel
    start = np.asarray(kernel.numpy(), dtype=np.float32)
    step = 1e-3
    shifted = start.copy()
    shifted[0, 0] += step
    kernel.assign(shifted)
    up = loss_and_gradients(model, loss_fn, x, y)[0]
    shifted[0, 0] -= 2 * step
    kernel.assign(shifted)
    down = loss_and_gradients(model, loss_fn, x, y)[0]
    kernel.assign(start)
    assert tensorflow_result["unchanged"]
    assert tensorflow_result["grads"][0][0][0] == pytest.approx((up - down) / (2 * step), rel=1e-2)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_every_backend_gives_the_same_gradients(backend, tensorflow_result):
    other = gradients_on(backend)
    assert other["unchanged"]
    assert other["loss"] == pytest.approx(tensorflow_result["loss"], abs=1e-5)
    for ours, theirs in zip(other["grads"], tensorflow_result["grads"]):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
    for (loss, ours), (expected, theirs) in zip(other["swapped"], tensorflow_result["swapped"], strict=True):
        assert loss == pytest.approx(expected, abs=1e-5)
        for mine, reference in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(mine, reference, atol=1e-5)
