"""Training on several devices or processes, on the engines each backend ships.

`train.distribution`:
- "none": one device, as Keras picks it.
- "data_parallel": every local device holds a replica and takes a slice of each global batch
  (`data.batch_size` stays the global batch): `keras.distribution.DataParallel` on JAX,
  `tf.distribute.MirroredStrategy` on TensorFlow.
- "multi_worker": several processes (one per host, or `--workers N` local ones) train one
  model, each reading its own shard of the data: `keras.distribution.initialize` and
  `DataParallel` over every process's devices, JAX only (see `SUPPORT`).

`DLKERAS_CPU_DEVICES=N` splits the CPU into N devices (XLA's host-platform device count on JAX,
logical devices on TensorFlow): a machine without accelerators can try every mode, and tests
run them for real. It must be set before the backend starts (`select_backend` reads it).

Backends differ only here: what each one supports (`SUPPORT`), how the mode is started
(`start`) and how one batch is predicted (`predict_batch`).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import asdict, dataclass

from dlkeras.errors import ConfigError

MODES = ("none", "data_parallel", "multi_worker")
CPU_DEVICES_VARIABLE = "DLKERAS_CPU_DEVICES"
# what each backend supports in Keras 3.15, and why not where it does not
SUPPORT = {
    "jax": {mode: "" for mode in MODES},
    "tensorflow": {
        "none": "", "data_parallel": "",
        "multi_worker": "Keras 3 cannot fit a model under TensorFlow's MultiWorkerMirroredStrategy "
                        "(keras-team/keras issue 20585: the trainer reduces scalar metrics along "
                        "a batch axis); run it with KERAS_BACKEND=jax",
    },
    "torch": {
        "none": "",
        "data_parallel": "Keras 3.15 has no distribution support for the torch backend; run it "
                         "with KERAS_BACKEND=jax or KERAS_BACKEND=tensorflow",
        "multi_worker": "Keras 3.15 has no distribution support for the torch backend; run it "
                        "with KERAS_BACKEND=jax",
    },
}


@dataclass(frozen=True)
class Replicas:
    """How a run is spread: its mode, replicas and processes, and this process's place."""

    mode: str
    backend: str
    replicas: int = 1
    processes: int = 1
    process_id: int = 0
    global_batch_size: int = 0
    learning_rate: float = 0.0

    @property
    def chief(self) -> bool:
        """Process 0: the only one that writes the run directory, reports and exports."""
        return self.process_id == 0

    @property
    def process_batch_size(self) -> int:
        return self.global_batch_size // self.processes

    def describe(self) -> str:
        where = (f"{self.replicas} replicas in {self.processes} processes (this is process "
                 f"{self.process_id})" if self.processes > 1 else f"{self.replicas} replica(s)")
        return (f"distribution: {self.mode} on {self.backend}, {where}; global batch "
                f"{self.global_batch_size} ({self.global_batch_size // self.replicas} per "
                f"replica), learning rate {self.learning_rate:g} (not scaled)")

    def to_json(self) -> dict:
        return asdict(self)


def check_supported(mode: str, backend: str) -> None:
    """Raises ConfigError when `backend` cannot run `mode`, naming the backends that can."""
    if mode not in MODES:
        raise ConfigError(f"train.distribution={mode!r} is not one of {', '.join(MODES)}")
    reason = SUPPORT.get(backend, {}).get(mode, "")
    if reason:
        raise ConfigError(f"train.distribution={mode!r} on the {backend} backend: {reason}")


def prepare_devices(backend: str) -> int:
    """Applies `DLKERAS_CPU_DEVICES` for JAX (before it starts); returns the count asked for.

    TensorFlow's logical devices are configured in `start` (after import, before first use).
    """
    raw = os.environ.get(CPU_DEVICES_VARIABLE, "")
    if raw in ("", "0", "1"):
        return 0
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{CPU_DEVICES_VARIABLE}={raw!r}: give a whole number of devices, e.g. 4")
    count = int(raw)
    if backend == "jax":
        flag = f"--xla_force_host_platform_device_count={count}"
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_force_host_platform_device_count" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {flag}".strip()
    return count


def start(recipe) -> Replicas:
    """Starts `train.distribution` for the active backend; returns where this process stands.

    Call before the data and the model are built: variables made afterwards are placed by
    the distribution (build them inside `scope(replicas)` on TensorFlow).

    Raises:
        ConfigError: the backend does not support the mode, or a multi-worker run lacks its
            addresses.
    """
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    mode = recipe.train.distribution
    check_supported(mode, backend)
    _stop()
    common = {"mode": mode, "backend": backend, "global_batch_size": recipe.data.batch_size,
              "learning_rate": recipe.train.learning_rate}
    if mode == "none":
        return Replicas(**common)
    if backend == "tensorflow":
        return Replicas(replicas=_start_mirrored(), **common)
    return _start_jax(mode, recipe.data.batch_size, common)


def _start_jax(mode: str, batch_size: int, common: dict) -> Replicas:
    import jax
    import keras

    if mode == "multi_worker":
        _check_worker_variables()
        if not jax.distributed.is_initialized():
            keras.distribution.initialize()
    devices = keras.distribution.list_devices()
    processes = jax.process_count()
    if batch_size % len(devices):
        raise ConfigError(f"data.batch_size={batch_size} does not split evenly over "
                          f"{len(devices)} devices; set it to a multiple of {len(devices)}")
    global _DISTRIBUTION
    _DISTRIBUTION = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
    from dlkeras.data import pipeline, shares

    pipeline.set_process_slice(jax.process_index(), processes, len(devices))
    shares.set_team(jax.process_index(), processes, exchange_bytes)
    return Replicas(replicas=len(devices), processes=processes, process_id=jax.process_index(),
                    **common)


def _start_mirrored() -> int:
    import tensorflow as tf

    count = prepare_devices("tensorflow")
    cpus = tf.config.list_physical_devices("CPU")
    if count > 1 and not tf.config.list_physical_devices("GPU"):
        try:
            tf.config.set_logical_device_configuration(
                cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)
        except RuntimeError:  # TensorFlow started earlier in this process: keep its devices
            pass
    devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
        [d.name for d in tf.config.list_logical_devices("CPU")]
    global _STRATEGY
    _STRATEGY = tf.distribute.MirroredStrategy(devices)
    return _STRATEGY.num_replicas_in_sync


_STRATEGY = None  # TensorFlow's strategy for this process, once `start` made one
_DISTRIBUTION = None  # JAX's DataParallel for this process, once `start` made one


def run_scope():
    """The context a whole run works in: TensorFlow's strategy scope, when one was started.

    Everything built, compiled and fitted inside it is mirrored on every replica.
    """
    return _STRATEGY.scope() if _STRATEGY is not None else contextlib.nullcontext()


def replica_scope():
    """The context in which models are built and fitted: JAX's DataParallel, when started.

    On JAX a model built inside it holds its variables on every device, and a fit inside it
    splits each batch over them. Outside it the same model predicts and evaluates on whole
    batches of any size (computed on the replicated variables), so only the fit's batches
    need to split evenly (`fit_batches`).
    """
    return _DISTRIBUTION.scope() if _DISTRIBUTION is not None else contextlib.nullcontext()


@contextlib.contextmanager
def fitting(model):
    """The context `model` is compiled and fitted in (on batches cut by `fit_batches`).

    JAX: `replica_scope`. Cutting leaves the number of batches unknown to Keras, which then
    warns that the input "ran out of data" at the end of the first epoch: expected, not shown.
    TensorFlow: BatchNormalization layers compute their statistics over the global batch
    (`synchronized`), as one device would, instead of over each replica's slice; the flag is
    put back afterwards, so saved models load on every backend.
    """
    normalizations = []
    if _STRATEGY is not None:
        import keras

        normalizations = [layer for layer in model._flatten_layers()
                          if isinstance(layer, keras.layers.BatchNormalization)
                          and not layer.synchronized]
    with replica_scope(), warnings.catch_warnings():
        if _DISTRIBUTION is not None:
            warnings.filterwarnings("ignore", message="Your input ran out of data")
        for layer in normalizations:
            layer.synchronized = True
        try:
            yield
        finally:
            for layer in normalizations:
                layer.synchronized = False


def fit_batches(dataset):
    """`dataset` as this process fits it under a JAX distribution (fits only).

    Each batch is cut to a multiple of the devices: a batch that does not split evenly (the
    last, partial one; a length group's) loses at most devices - 1 examples for that epoch.
    The training pipeline reshuffles every epoch, so no example is left out for good, and
    validation inside fit, which only picks epochs, sees all but a handful; test and report
    predictions run outside the fit on every example. With several processes, each then keeps
    its own contiguous slice of every global batch (`pipeline.slice_batches`). Training
    pipelines of a multi-process run come sliced already, before their tokenization or
    augmentation (`pipeline.SLICED`), and pass unchanged.
    """
    from dlkeras.data import pipeline

    if _DISTRIBUTION is None or getattr(dataset, pipeline.SLICED, False):
        return dataset
    index = 0
    if _DISTRIBUTION.num_processes > 1:
        import jax

        index = jax.process_index()
    return pipeline.slice_batches(dataset, index, _DISTRIBUTION.num_processes,
                                  _DISTRIBUTION.device_mesh.devices.size)


def active() -> bool:
    """Whether this process runs a distribution (`start` made a strategy or a DataParallel)."""
    return _STRATEGY is not None or _DISTRIBUTION is not None


def processes() -> int:
    """The number of processes of this run's distribution (1 without one)."""
    return _DISTRIBUTION.num_processes if _DISTRIBUTION is not None else 1


def own_rows(count: int) -> slice:
    """This process's contiguous share of `count` rows (all of them in one process)."""
    if _DISTRIBUTION is None or _DISTRIBUTION.num_processes == 1:
        return slice(0, count)
    import jax

    bounds = [count * p // jax.process_count() for p in range(jax.process_count() + 1)]
    return slice(bounds[jax.process_index()], bounds[jax.process_index() + 1])


def gather_rows(local, count: int):
    """Every process's `own_rows(count)` results (`local`, one row each), in row order."""
    import numpy as np

    if _DISTRIBUTION is None or _DISTRIBUTION.num_processes == 1:
        return local
    import jax
    from jax.experimental import multihost_utils

    processes = jax.process_count()
    bounds = [count * p // processes for p in range(processes + 1)]
    longest = max(b - a for a, b in zip(bounds, bounds[1:]))
    padded = np.zeros((longest, *local.shape[1:]), local.dtype)
    padded[:len(local)] = local
    every = np.asarray(multihost_utils.process_allgather(padded))
    return np.concatenate([every[p, :bounds[p + 1] - bounds[p]] for p in range(processes)])


def exchange_bytes(local: bytes) -> list[bytes]:
    """Every process's `local` bytes, in process order (a collective: all processes call it).

    The data pipelines share their one-off work through it (`data.shares`).
    """
    import jax
    import numpy as np
    from jax.experimental import multihost_utils

    sizes = np.asarray(multihost_utils.process_allgather(
        np.array([len(local)], np.int32))).reshape(-1)
    padded = np.zeros(max(int(sizes.max()), 1), np.uint8)
    padded[:len(local)] = np.frombuffer(local, np.uint8)
    every = np.asarray(multihost_utils.process_allgather(padded)).reshape(jax.process_count(), -1)
    return [every[p, :sizes[p]].tobytes() for p in range(jax.process_count())]


def predict_batches(model, batches) -> list:
    """The model's outputs for each batch of `batches` (an iterable of input batches), in order.

    In a multi-worker run the batches are shared out: process p computes batches p, p + P, ...
    alone, on its own copy of the (identical) weights, and every process then receives all
    outputs. So work such as the feature cache is done once, split, not once per process.
    """
    call = local_predictor(model)
    if _DISTRIBUTION is None or _DISTRIBUTION.num_processes == 1:
        return [call(inputs) for inputs in batches]
    import jax
    import numpy as np
    from jax.experimental import multihost_utils

    processes, me = jax.process_count(), jax.process_index()
    sizes, mine, example = [], [], None
    for index, inputs in enumerate(batches):
        sizes.append(int(jax.tree_util.tree_leaves(inputs)[0].shape[0]))
        if index % processes == me or example is None:
            outputs = call(inputs)
            example = outputs[:0]
            if index % processes == me:
                mine.append(outputs)
    if not sizes:
        return []
    owned = [sum(sizes[p::processes]) for p in range(processes)]
    local = np.concatenate([example, *mine])
    padded = np.zeros((max(owned), *local.shape[1:]), local.dtype)
    padded[:len(local)] = local
    every = np.asarray(multihost_utils.process_allgather(padded))
    offsets, ordered = [0] * processes, []
    for index, size in enumerate(sizes):
        p = index % processes
        ordered.append(every[p, offsets[p]:offsets[p] + size])
        offsets[p] += size
    return ordered


def local_predictor(model):
    """inputs -> the model's outputs (numpy), computed by this process alone.

    Single-process: `predict_batch`. In a multi-worker run the variables are arrays shared by
    every process, and a computation on them runs on all processes at once; this one runs on
    a local copy of the weights instead, so each process can predict different examples.

    Either way a batch smaller than the largest one before it (a split's last) is padded up to
    that size (`in_full_batches`).
    """
    if _DISTRIBUTION is None or _DISTRIBUTION.num_processes == 1:
        return in_full_batches(lambda inputs: predict_batch(model, inputs))
    import jax
    import numpy as np

    weights = ([np.asarray(v.value) for v in model.trainable_variables],
               [np.asarray(v.value) for v in model.non_trainable_variables])
    call = jax.jit(lambda trainable, non_trainable, x:
                   model.stateless_call(trainable, non_trainable, x, training=False)[0])
    return in_full_batches(lambda inputs: np.asarray(call(*weights, inputs)))


def in_full_batches(predict):
    """`predict` (inputs -> outputs, arrays or dicts of arrays, one row per example) that calls
    it on a batch smaller than the largest one seen so far with that batch's last row repeated
    up to that size, and returns only the batch's own rows.

    A compiled predict is built per batch shape: a JAX program compiled, a TensorFlow function
    traced again. Without the padding a split's last, smaller batch builds another (seconds for
    a pretrained backbone), and under JAX the last batch of every split does. Inference
    computes each row on its own, so the padding rows change no output.
    """
    import keras
    import numpy as np

    largest = 0

    def call(inputs):
        nonlocal largest
        rows = len(keras.tree.flatten(inputs)[0])
        largest = max(largest, rows)
        if rows == largest:
            return predict(inputs)
        padded = keras.tree.map_structure(
            lambda array: np.concatenate([array, np.repeat(np.asarray(array)[-1:], largest - rows, axis=0)]),
            inputs)
        return keras.tree.map_structure(lambda array: array[:rows], predict(padded))

    return call


def weights_agree(model) -> bool:
    """True when every process holds the same weights as this one (always, in one process)."""
    if _DISTRIBUTION is None or _DISTRIBUTION.num_processes == 1:
        return True
    import hashlib

    import numpy as np
    from jax.experimental import multihost_utils

    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(np.asarray(weight.value)).tobytes())
    mine = np.frombuffer(digest.digest(), dtype=np.uint8)  # bytes: JAX keeps them as they are
    every = np.asarray(multihost_utils.process_allgather(mine)).reshape(-1, mine.size)
    return bool((every == mine).all())


def predict_batch(model, inputs):
    """The model's outputs for one batch of inputs, under any distribution.

    `predict_on_batch` under a MirroredStrategy returns one copy of the outputs per replica,
    so there `predict` (which gathers them right) is used. On JAX a batch predicted during a
    fit (a validation callback) leaves the DataParallel scope, whose device split it may not
    fit.
    """
    if _STRATEGY is not None:
        return model.predict(inputs, verbose=0)
    if _DISTRIBUTION is None:
        return model.predict_on_batch(inputs)
    import keras

    inside = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        return model.predict_on_batch(inputs)
    finally:
        keras.distribution.set_distribution(inside)


def _stop() -> None:
    """Forgets an earlier run's distribution (runs in one process, e.g. notebooks and tests)."""
    global _STRATEGY, _DISTRIBUTION
    _STRATEGY = _DISTRIBUTION = None
    from dlkeras.data import pipeline, shares

    pipeline.set_process_slice(0, 1, 1)
    shares.set_team(0, 1, None)


def _check_worker_variables() -> None:
    needed = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
              "KERAS_DISTRIBUTION_PROCESS_ID")
    missing = [name for name in needed if not os.environ.get(name)]
    if missing:
        raise ConfigError(
            f"train.distribution='multi_worker' needs {', '.join(missing)} in the environment "
            "of every process (see the README's distributed section), or start local workers "
            "with python -m dlkeras.train --workers N"
        )
