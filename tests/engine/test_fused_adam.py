"""The fused TensorFlow Adam update: Keras' arithmetic, one kernel per variable."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from dlkeras.engine import discriminative, fused_adam

SETTINGS = {"learning_rate": keras.optimizers.schedules.CosineDecay(0.0, 4, warmup_target=1e-2,
                                                                    warmup_steps=2),
            "clipnorm": 0.5, "weight_decay": 0.05}


def trained_weights(optimizer, steps=4):
    """Weights after `steps` updates of three variables (one of them an embedding table fed
    IndexedSlices) by `optimizer`, with fixed gradients."""
    rng = np.random.default_rng(0)
    variables = [keras.Variable(rng.normal(size=shape).astype("float32"), name=f"w{i}")
                 for i, shape in enumerate([(5, 3), (3,), (10, 4)])]
    optimizer.build(variables)
    for step in range(steps):
        dense = [rng.normal(size=v.shape).astype("float32") for v in variables[:2]]
        rows = tf.IndexedSlices(tf.constant(rng.normal(size=(2, 4)), tf.float32),
                                tf.constant([1, 7]), dense_shape=tf.constant([10, 4]))
        optimizer.apply([*dense, rows], variables)
    return [np.asarray(v) for v in variables]


@pytest.mark.parametrize("fused, reference, extra", [
    (fused_adam.FusedAdamW, keras.optimizers.AdamW, {}),
    (fused_adam.FusedAdam, keras.optimizers.Adam, {}),
    (fused_adam.FusedAdamW, keras.optimizers.AdamW, {"gradient_accumulation_steps": 2}),
])
def test_fused_update_matches_keras_update(fused, reference, extra):
    settings = {key: value for key, value in SETTINGS.items()
                if key != "weight_decay" or reference is keras.optimizers.AdamW} | extra
    for got, expected in zip(trained_weights(fused(**settings)), trained_weights(reference(**settings))):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_the_update_is_one_apply_adam_kernel_per_variable():
    variables = [keras.Variable(np.ones((4, 3), "float32")), keras.Variable(np.ones(3, "float32"))]
    optimizer = fused_adam.FusedAdam(learning_rate=1e-3, clipnorm=1.0)
    optimizer.build(variables)
    step = tf.function(lambda grads: optimizer.apply(grads, variables))
    graph = step.get_concrete_function([tf.TensorSpec(v.shape, tf.float32) for v in variables]).graph
    op_types = [op.type for function in [graph, *graph._functions.values()]
                for op in getattr(function, "graph", function).get_operations()]
    assert op_types.count("ResourceApplyAdam") == 2
    assert "AssignSubVariableOp" not in op_types  # Keras' own update subtracts from each variable


def test_discriminative_adamw_scales_the_backbone_step_in_the_fused_update():
    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(2, name="head_output")(keras.layers.Dense(4, name="body")(inputs))
    model = keras.Model(inputs, outputs)
    optimizer = discriminative.DiscriminativeAdamW(backbone_scale=0.01, learning_rate=1e-2,
                                                   weight_decay=0.0)
    assert isinstance(optimizer, fused_adam.FusedAdamUpdate)
    optimizer.build(model.trainable_variables)
    before = {v.path: np.asarray(v).copy() for v in model.trainable_variables}
    optimizer.apply([np.ones(v.shape, "float32") for v in model.trainable_variables],
                    model.trainable_variables)
    moved = {v.path: np.abs(np.asarray(v) - before[v.path]).max() for v in model.trainable_variables}
    assert moved["head_output/kernel"] == pytest.approx(1e-2, rel=0.01)
    assert moved["body/kernel"] == pytest.approx(1e-4, rel=0.01)
