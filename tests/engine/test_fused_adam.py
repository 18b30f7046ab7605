"""The fused Adam update, clipping and weight decay: Keras' arithmetic in fewer passes, on
TensorFlow (in this process) and PyTorch (a fresh interpreter).

Run as a script (`python test_fused_adam.py`), this file trains a few variables with the fused
optimizers and Keras' own under the backend of KERAS_BACKEND and prints what the tests compare
as JSON.
"""

import json
import os
import sys

import keras
import numpy as np
import pytest

from dlkeras.engine import discriminative, fused_adam

SETTINGS = {"learning_rate": keras.optimizers.schedules.CosineDecay(0.0, 4, warmup_target=1e-2,
                                                                    warmup_steps=2),
            "clipnorm": 2.0, "weight_decay": 0.05, "epsilon": 1e-3}
# (fused class, Keras' class, extra settings). The gradients' norms (3 to 40 N(0, 1) values)
# straddle the clip norm; the epsilon is large enough that adding it before or after the bias
# correction changes the weights by about 1e-4.
CASES = (
    ("FusedAdamW", "AdamW", {}),
    ("FusedAdam", "Adam", {}),
    ("FusedAdamW", "AdamW", {"gradient_accumulation_steps": 2}),
)


def gradients(rng, variables, sparse_last: bool):
    """Random gradients for `variables`; the last one as IndexedSlices of two rows on
    TensorFlow when `sparse_last` (an embedding table's gradient)."""
    dense = [keras.ops.convert_to_tensor(rng.normal(size=v.shape).astype("float32"))
             for v in variables]
    if not sparse_last:
        return dense
    import tensorflow as tf

    rows = tf.IndexedSlices(tf.constant(rng.normal(size=(2, 4)), tf.float32),
                            tf.constant([1, 7]), dense_shape=tf.constant([10, 4]))
    return [*dense[:-1], rows]


def trained_weights(optimizer, steps=4, sparse_last=False):
    """Weights after `steps` updates of three variables by `optimizer`, with fixed gradients."""
    rng = np.random.default_rng(0)
    variables = [keras.Variable(rng.normal(size=shape).astype("float32"), name=f"w{i}")
                 for i, shape in enumerate([(5, 3), (3,), (10, 4)])]
    optimizer.build(variables)
    for _ in range(steps):
        optimizer.apply(gradients(rng, variables, sparse_last), variables)
    return [np.asarray(v) for v in variables]


def largest_differences(sparse_last=False) -> dict:
    """Per case: the largest absolute difference between the fused and Keras' weights."""
    found = {}
    for fused, reference, extra in CASES:
        settings = {key: value for key, value in SETTINGS.items()
                    if key != "weight_decay" or reference == "AdamW"} | extra
        got = trained_weights(getattr(fused_adam, fused)(**settings), sparse_last=sparse_last)
        expected = trained_weights(getattr(keras.optimizers, reference)(**settings),
                                   sparse_last=sparse_last)
        found[f"{fused} {extra}"] = max(float(np.abs(a - b).max()) for a, b in zip(got, expected))
    return found


def torch_findings() -> dict:
    """On PyTorch: the differences, the variables of each `torch._fused_adam_` call, and a
    discriminative optimizer's moves."""
    import torch

    calls = []
    kernel = torch._fused_adam_
    torch._fused_adam_ = lambda params, *args, **kwargs: (calls.append(len(params)),
                                                          kernel(params, *args, **kwargs))
    found = {"backend": keras.backend.backend(), "differences": largest_differences(),
             "moved": discriminative_moves()}
    return {**found, "fused_calls": calls}


def discriminative_moves() -> dict:
    """How far one step of DiscriminativeAdamW (backbone at 0.01 of the rate) moves each kernel."""
    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(2, name="head_output")(keras.layers.Dense(4, name="body")(inputs))
    model = keras.Model(inputs, outputs)
    optimizer = discriminative.DiscriminativeAdamW(backbone_scale=0.01, learning_rate=1e-2,
                                                   weight_decay=0.0)
    optimizer.build(model.trainable_variables)
    before = {v.path: np.asarray(v).copy() for v in model.trainable_variables}
    optimizer.apply([keras.ops.ones(v.shape) for v in model.trainable_variables],
                    model.trainable_variables)
    return {v.path: float(np.abs(np.asarray(v) - before[v.path]).max())
            for v in model.trainable_variables}


def assert_discriminative_moves(moved: dict) -> None:
    assert moved["head_output/kernel"] == pytest.approx(1e-2, rel=0.01)
    assert moved["body/kernel"] == pytest.approx(1e-4, rel=0.01)


def test_fused_update_matches_keras_update_on_tensorflow():
    differences = largest_differences(sparse_last=True)
    assert len(differences) == len(CASES)
    assert max(differences.values()) < 2e-6, differences


def test_tensorflow_update_clip_and_decay_take_one_kernel_each_per_variable():
    import tensorflow as tf

    variables = [keras.Variable(np.ones((4, 3), "float32")), keras.Variable(np.ones(3, "float32"))]
    optimizer = fused_adam.FusedAdamW(learning_rate=1e-3, clipnorm=1.0, weight_decay=0.01)
    optimizer.build(variables)
    step = tf.function(lambda grads: optimizer.apply(grads, variables))
    graph = step.get_concrete_function([tf.TensorSpec(v.shape, tf.float32) for v in variables]).graph
    ops = [op for function in [graph, *graph._functions.values()]
           for op in getattr(function, "graph", function).get_operations()]
    op_types = [op.type for op in ops]
    assert op_types.count("ResourceApplyAdam") == 2
    assert op_types.count("L2Loss") == 2  # each gradient's norm in one reduction
    # Keras' update, clip and decay subtract from each variable, square it and divide it
    assert {"AssignSubVariableOp", "Square"}.isdisjoint(op_types)
    assert all(op.outputs[0].shape.rank == 0 for op in ops if op.type == "RealDiv")


def test_discriminative_adamw_scales_the_backbone_step_in_the_fused_update():
    assert isinstance(discriminative.DiscriminativeAdamW(), fused_adam.FusedAdamUpdate)
    assert_discriminative_moves(discriminative_moves())


def test_fused_update_matches_keras_update_on_torch_in_one_call_per_rate():
    import prestart  # tests/, not on the path when this file runs as a script

    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = prestart.run([sys.executable, __file__], env=env, capture_output=True, text=True,
                          timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["backend"] == "torch"
    assert len(found["differences"]) == len(CASES)
    assert max(found["differences"].values()) < 2e-6, found["differences"]
    # 4 + 4 + 2 updates (accumulating steps update nothing) of the three variables in one call
    # each, then the discriminative optimizer's one update: a call per learning rate
    assert found["fused_calls"] == [3] * 10 + [2, 2], found["fused_calls"]
    assert_discriminative_moves(found["moved"])


if __name__ == "__main__":
    print(json.dumps(torch_findings()))
