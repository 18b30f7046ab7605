"""The loss and its gradient for every trainable weight, on one batch, on any backend.

Keras 3 has no backend-neutral gradient call outside `fit`, so this is one of the few places
that branches on the backend (as `distribution` does). Used by the training callback that logs
the global gradient norm and by `dlkeras.check`'s gradient-flow check.

Nothing here changes the model: no optimizer step, and with `training=False` (the default)
no BatchNormalization statistics move and no random layer draws, so calling it between epochs
leaves a run's results bit-identical.
"""

from __future__ import annotations

import functools
import math
import weakref

import numpy as np


def loss_and_gradients(model, loss_fn, inputs, targets, training: bool = False):
    """The mean loss of `model` on one batch and the gradient of each trainable weight.

    Args:
        loss_fn: a Keras loss (y_true, y_pred) -> scalar.
        inputs, targets: one batch, as numpy arrays (a dict of arrays for several inputs).
        training: run layers in training mode (dropout, batch statistics).

    Returns:
        (loss, gradients): a float and one numpy array per `model.trainable_variables`
        entry, in that order; None where the loss does not depend on the weight.
    """
    import keras

    inputs = keras.tree.map_structure(keras.ops.convert_to_tensor, inputs)
    targets = keras.ops.convert_to_tensor(targets)
    compute = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}[keras.backend.backend()]
    loss, gradients = compute(model, loss_fn, inputs, targets, training)
    return float(loss), [None if g is None else np.asarray(keras.ops.convert_to_numpy(g),
                                                           dtype=np.float64)
                         for g in gradients]


def global_norm(gradients) -> float:
    """The L2 norm of all gradients together (None entries count as zero)."""
    return math.sqrt(sum(float(np.sum(np.square(g))) for g in gradients if g is not None))


def batch_gradient_norm(model, loss_fn, inputs, targets) -> float:
    """The global gradient norm of `loss_fn` on one batch, in inference mode.

    Under a distribution the whole batch is computed on the replicated weights: on JAX
    outside a fit's DataParallel (whose device split a batch of any size need not fit); on
    TensorFlow inside each replica of the MirroredStrategy (its mirrored weights can be
    differentiated only there), all of which compute the same norm. Keras divides a mean
    loss by the number of replicas under a strategy (their gradients are summed); the norm
    is multiplied back, as Keras does for the loss it logs, to match one device's.

    Args:
        loss_fn: a `keras.losses.Loss`.
    """
    import keras

    def norm() -> float:
        _, found = loss_and_gradients(model, loss_fn, inputs, targets, training=False)
        return global_norm(found)

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.distribute.has_strategy() and tf.distribute.in_cross_replica_context():
            strategy = tf.distribute.get_strategy()
            norms = strategy.run(lambda: tf.constant(norm(), tf.float64))
            return float(strategy.experimental_local_results(norms)[0]) * \
                strategy.num_replicas_in_sync
    inside = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        return norm()
    finally:
        keras.distribution.set_distribution(inside)


def _tensorflow(model, loss_fn, inputs, targets, training):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = loss_fn(targets, model(inputs, training=training))
    return loss, tape.gradient(loss, [v.value for v in model.trainable_variables])


_JAX_STEPS = weakref.WeakKeyDictionary()  # model -> {(loss_fn, training, trainable): jitted step}


def _jax(model, loss_fn, inputs, targets, training):
    import jax

    # in a multi-process run the variables are arrays shared by every process, and a
    # computation on them runs on all processes at once: this process's inputs differ from
    # the others', so it computes on a local copy of the weights
    local = np.asarray if jax.process_count() > 1 else (lambda value: value)
    trainable = [local(v.value) for v in model.trainable_variables]
    non_trainable = [local(v.value) for v in model.non_trainable_variables]
    steps = _JAX_STEPS.setdefault(model, {})
    # which variables train is part of the key: a stage that freezes or unfreezes layers gets
    # its own step even where the weights' shapes happen to match the last one's
    key = (loss_fn, training, tuple(v.path for v in model.trainable_variables))
    if key not in steps:
        # compiled once per model and stage (and kept in JAX's compilation cache on disk): run
        # op by op, the first call compiled every operation on its own (2.1-2.5 s for a 3-layer
        # MLP against 0.3 s; later calls 0.02 s either way)
        steps[key] = jax.jit(jax.value_and_grad(
            functools.partial(_stateless_loss, weakref.ref(model), loss_fn, training)))
    return steps[key](trainable, non_trainable, inputs, targets)


def _stateless_loss(model_ref, loss_fn, training, weights, non_trainable, inputs, targets):
    """The loss of the model behind `model_ref` with these weights (a weak reference: the
    compiled step kept for the model must not keep it alive)."""
    outputs, _ = model_ref().stateless_call(weights, non_trainable, inputs, training=training)
    return loss_fn(targets, outputs)


def _torch(model, loss_fn, inputs, targets, training):
    weights = [v.value for v in model.trainable_variables]
    for weight in weights:
        weight.grad = None
    loss = loss_fn(targets, model(inputs, training=training))
    loss.backward()
    gradients = [None if w.grad is None else w.grad.detach().clone() for w in weights]
    for weight in weights:
        weight.grad = None
    return loss.detach(), gradients
