"""Adam and AdamW whose update, clipping and weight decay take few passes over memory.

Keras' Adam updates each variable with about a dozen element-wise ops (subtract, multiply,
square, sqrt, divide, three assignments), each one a full pass over the variable or its two
moments; its per-variable `clipnorm` takes four more (square, sum, multiply, divide) and its
decoupled weight decay three (two multiplies and a subtraction). On the bert_tickets fine-tune
(22.6 million parameters, half of them the word-embedding table, batch 32) Keras' update alone
was about 40% of the CPU time of a TensorFlow training step. Here, with the same arithmetic
(`bench/bert_tickets.py`, side by side with Keras' clipping and decay: 1.01x to 1.10x faster
steps on TensorFlow in bfloat16, depending on the machine's load; 1.34x on PyTorch, where
Keras' own update was also replaced):

- TensorFlow: `tf.raw_ops.ResourceApplyAdam`, one multithreaded kernel per variable (the same
  bias-corrected step size and epsilon); each gradient's norm from one `L2Loss` reduction and
  one multiply to clip it; weight decay as one multiply whose result becomes the variable.
- PyTorch: one `torch._fused_adam_` call for all variables (Keras' epsilon is added before the
  bias correction, PyTorch's after: the epsilon passed is scaled to match); the norms of all
  gradients from one `torch._foreach_norm`, then one multiply per gradient above the limit.
  Keras' own classes batch the update with a dozen `torch._foreach` passes; its weight decay is
  already one.

Everything else stays Keras': gradient accumulation, schedules, variables and config. JAX (XLA
fuses the element-wise ops itself), a `tf.distribute` strategy, amsgrad, variables that are not
float32 and, on PyTorch, variables on more than one device keep Keras' per-variable update.
"""

from __future__ import annotations

import math

import keras


class FusedAdamUpdate:
    """Mixin for keras.optimizers.Adam and its subclasses: the fused update, clipping and decay."""

    def update_step(self, gradient, variable, learning_rate):
        if not self._fuses(variable):
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, tf.float32)
        beta_1, beta_2 = tf.constant(self.beta_1, tf.float32), tf.constant(self.beta_2, tf.float32)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable), m=_handle(self._momentums[index]),
            v=_handle(self._velocities[index]),
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, tf.float32), beta1=beta_1, beta2=beta_2,
            epsilon=tf.constant(self.epsilon, tf.float32),
            grad=tf.cast(tf.convert_to_tensor(gradient), tf.float32),
        )

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if self._fuses_torch(trainable_variables):
            return _torch_update(self, grads, trainable_variables, learning_rate)
        return super()._backend_update_step(grads, trainable_variables, learning_rate)

    def _clip_gradients(self, grads):
        backend = self._backend()
        if not (self.clipnorm and self.clipnorm > 0) or backend is None:
            return super()._clip_gradients(grads)
        clip = _clip_tensorflow if backend == "tensorflow" else _clip_torch
        clipped = iter(clip([g for g in grads if g is not None], self.clipnorm))
        return [None if g is None else next(clipped) for g in grads]

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None or self._backend() != "tensorflow":
            return super()._apply_weight_decay(variables)
        import tensorflow as tf

        shrink = 1.0 - tf.cast(self.learning_rate, tf.float32) * tf.cast(self.weight_decay, tf.float32)
        for variable in variables:
            if self._use_weight_decay(variable):
                value = variable.value if isinstance(variable, keras.Variable) else variable
                value.assign(value * tf.cast(shrink, value.dtype))

    def _variable_learning_rate_scale(self, variable) -> float:
        """The factor on the learning rate of `variable` (1.0 here; see dlkeras.engine.discriminative)."""
        return 1.0

    def _backend(self) -> str | None:
        """"tensorflow" or "torch" where this optimizer's fused paths apply, else None."""
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            return None if tf.distribute.has_strategy() else backend
        return backend if backend == "torch" else None

    def _fuses(self, variable) -> bool:
        if self._backend() != "tensorflow" or self.amsgrad:
            return False
        import tensorflow as tf

        return variable.dtype == tf.float32

    def _fuses_torch(self, variables) -> bool:
        if self._backend() != "torch" or self.amsgrad:
            return False
        import torch

        devices = {v.value.device for v in variables}
        return (hasattr(torch, "_fused_adam_") and len(devices) == 1
                and all(v.dtype == "float32" for v in variables))


def _handle(variable):
    """The resource handle of a Keras variable or the tf.Variable Keras hands to update_step."""
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle


def _clip_tensorflow(grads, clipnorm: float) -> list:
    """Each gradient scaled to an L2 norm of at most `clipnorm`: one reduction, one multiply."""
    import tensorflow as tf

    clipped = []
    for gradient in grads:
        gradient = tf.convert_to_tensor(gradient)  # IndexedSlices -> dense, as Keras' clip does
        limit = tf.cast(clipnorm, gradient.dtype)
        norm = tf.sqrt(2.0 * tf.nn.l2_loss(gradient))
        clipped.append(gradient * (limit / tf.maximum(norm, limit)))
    return clipped


def _clip_torch(grads, clipnorm: float) -> list:
    """Each gradient scaled to an L2 norm of at most `clipnorm`: one batched norm, then one
    multiply for each gradient above it."""
    import torch

    grads = [keras.ops.convert_to_tensor(g) for g in grads]
    if not grads:
        return grads
    with torch.no_grad():
        norms = torch.stack(torch._foreach_norm(grads))
        scales = (clipnorm / torch.clamp_min(norms, clipnorm)).tolist()
        # a gradient within the norm is left as it is (Keras multiplies it by exactly 1.0)
        return [g if scale == 1.0 else g * scale for g, scale in zip(grads, scales)]


def _torch_update(optimizer, grads, variables, learning_rate) -> None:
    """Keras' Adam step for every variable in one `torch._fused_adam_` call per learning rate."""
    import torch

    step = float(keras.ops.convert_to_numpy(optimizer.iterations)) + 1.0
    # Keras: lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps); PyTorch divides sqrt(v)
    # by sqrt(1 - b2^t) before adding its epsilon, so that epsilon is eps / sqrt(1 - b2^t)
    epsilon = optimizer.epsilon / math.sqrt(1.0 - optimizer.beta_2**step)
    learning_rate = float(keras.ops.convert_to_numpy(learning_rate))
    groups = {}
    for gradient, variable in zip(grads, variables):
        index = optimizer._get_variable_index(variable)
        group = groups.setdefault(optimizer._variable_learning_rate_scale(variable), ([], [], [], []))
        for part, value in zip(group, (variable.value, gradient, optimizer._momentums[index].value,
                                       optimizer._velocities[index].value)):
            part.append(value)
    steps = torch.tensor(step, dtype=torch.float32, device=variables[0].value.device)
    with torch.no_grad():
        for scale, (params, gradients, momentums, velocities) in groups.items():
            gradients = [g.to(torch.float32).contiguous() for g in gradients]
            torch._fused_adam_(params, gradients, momentums, velocities, [], [steps] * len(params),
                               lr=learning_rate * scale,
                               beta1=optimizer.beta_1, beta2=optimizer.beta_2, weight_decay=0.0,
                               eps=epsilon, amsgrad=False, maximize=False)


@keras.saving.register_keras_serializable(package="dlkeras")
class FusedAdam(FusedAdamUpdate, keras.optimizers.Adam):
    """keras.optimizers.Adam with the fused update and clipping."""


@keras.saving.register_keras_serializable(package="dlkeras")
class FusedAdamW(FusedAdamUpdate, keras.optimizers.AdamW):
    """keras.optimizers.AdamW with the fused update, clipping and weight decay."""


CLASSES = {"Adam": FusedAdam, "AdamW": FusedAdamW}  # keras.optimizers name -> fused class
BACKENDS = ("tensorflow", "torch")  # where build_optimizer picks CLASSES
