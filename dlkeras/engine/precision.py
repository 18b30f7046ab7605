"""The precision policy of a run: `train.precision`, with `auto` chosen per machine and backend.

    auto             mixed_float16 on a GPU; on a CPU with native bfloat16 (avx512_bf16 or AMX),
                     mixed_bfloat16 when a short matrix-multiply probe on the active backend runs
                     at least `MIN_SPEEDUP` times float32's speed and the model has at least
                     `MIN_BF16_WEIGHTS` weights (`fit_to_model`, `build_fitted` for a search's
                     trials and the checks); float32 everywhere else
    float32          always
    mixed_bfloat16   bfloat16 compute, float32 weights (fast only where the CPU has bf16 units)
    mixed_float16    float16 compute with loss scaling (GPUs; very slow on CPUs)

The probe's result is cached per CPU, backend and library versions (`cache_path`), so it runs
once per machine. Under a mixed policy the models' output layers stay float32 (their factories
say so), and the finished run's `model.keras` is saved as a float32 copy (`as_float32`): the
weights are float32 anyway, so predict, export and the parity gate see a float32 model.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

POLICIES = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # CPU instruction sets that compute bfloat16 natively
MIN_SPEEDUP = 1.3  # bf16 must beat float32 by this factor in the probe to be chosen
# a model with fewer weights than this trains in float32 under auto: its steps are too small for
# bfloat16's arithmetic to outweigh the casts (bench/precision.py: the 5k-weight mlp_churn trained
# 1.4x slower in bfloat16, the 306k-weight cnn_digits 1.25x faster)
MIN_BF16_WEIGHTS = 100_000
PROBE_SIZE = 1024  # square matrices multiplied by the probe
PROBE_REPEATS = 5


@dataclass(frozen=True)
class Choice:
    """The policy a run uses and why (printed, and recorded in env.json)."""

    policy: str
    requested: str
    reason: str
    probe: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {key: value for key, value in asdict(self).items() if value != {}}


def cpu_flags() -> set[str]:
    """The CPU's instruction-set flags (Linux /proc/cpuinfo; empty where it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def choose(requested: str, backend: str, *, accelerator: bool | None, several_processes: bool = False,
           flags: set[str] | None = None, measure: Callable[[], dict] | None = None) -> Choice:
    """The policy for `requested` (one of `POLICIES`) on this machine.

    Args:
        accelerator: a GPU is present (None: not asked, as in a multi-worker run, where
            asking would start the backend before the processes connect).
        several_processes: a multi-worker run, whose processes must agree without probing.
        flags: the CPU's flags (default: this machine's).
        measure: the probe, returning {"float32_gflops", "bfloat16_gflops"} (default: the cached
            or freshly measured probe of `backend`); injectable for tests.
    """
    if requested != "auto":
        reason = "set in the recipe"
        if requested == "mixed_float16" and accelerator is False:
            reason += "; no GPU here: float16 on a CPU is emulated and much slower than float32"
        if requested == "mixed_bfloat16" and accelerator is False and not native_bf16(flags):
            reason += f"; this CPU lacks {' and '.join(BF16_FLAGS)}: bfloat16 is emulated, 2-9x slower"
        return Choice(requested, requested, reason)
    if several_processes:
        return Choice("float32", requested, "auto: the processes of a multi-worker run must agree "
                      "without probing each machine; set train.precision to choose")
    if accelerator:
        return Choice("mixed_float16", requested, "auto: a GPU computes float16 natively")
    if not native_bf16(flags):
        return Choice("float32", requested, f"auto: this CPU has no native bfloat16 "
                      f"({' or '.join(BF16_FLAGS)})")
    probe = (measure or (lambda: cached_probe(backend)))()
    speedup = probe["bfloat16_gflops"] / probe["float32_gflops"]
    probe = {**probe, "speedup": round(speedup, 2)}
    policy = "mixed_bfloat16" if speedup >= MIN_SPEEDUP else "float32"
    return Choice(policy, requested, f"auto: bfloat16 matrix multiplies ran {speedup:.2f}x float32's "
                  f"speed on {backend} here (chosen at {MIN_SPEEDUP}x or more)", probe)


def fit_to_model(model, choice: Choice, rebuild: Callable[[], object]):
    """(model, choice), with a model too small for bfloat16 rebuilt in float32 when auto chose it.

    Args:
        rebuild: builds the model again (called under the float32 policy).
    """
    weights = model.count_params()
    if choice.requested != "auto" or choice.policy != "mixed_bfloat16" or weights >= MIN_BF16_WEIGHTS:
        return model, choice
    import keras

    keras.mixed_precision.set_global_policy("float32")
    choice = Choice("float32", choice.requested, f"auto: a model of {weights:,} weights is too small "
                    f"for bfloat16 to pay (under {MIN_BF16_WEIGHTS:,}), although the probe favoured "
                    "it", choice.probe)
    return rebuild(), choice


def build_fitted(build: Callable[[], object], requested: str):
    """`build()` under the global policy; under `auto`, a model too small for bfloat16 is built
    again in float32 (`fit_to_model`). The global policy is left as it was, for the next model
    (a search's next trial may be larger)."""
    import keras

    policy = keras.mixed_precision.global_policy().name
    try:
        model, _ = fit_to_model(build(), Choice(policy, requested, ""), build)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    return model


def native_bf16(flags: set[str] | None = None) -> bool:
    return bool(set(BF16_FLAGS) & (cpu_flags() if flags is None else flags))


def cache_path() -> Path:
    """Where probe results are kept: in dlkeras' cache folder (`presets.cache_dir`:
    $DLKERAS_CACHE, else ~/.cache/dlkeras), beside the generated assets and JAX's programs."""
    from dlkeras.presets import cache_dir

    return cache_dir() / "precision_probe.json"


def cached_probe(backend: str) -> dict:
    """The probe of `backend` on this CPU, measured once and then read from `cache_path`."""
    from importlib import metadata

    import keras

    library = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend, backend)
    try:
        version = metadata.version(library)
    except metadata.PackageNotFoundError:
        version = "?"
    key = f"{cpu_model()}|{os.cpu_count()} cpus|{backend} {version}|keras {keras.__version__}"
    path = cache_path()
    try:
        cache = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    if isinstance(cache.get(key), dict) and {"float32_gflops", "bfloat16_gflops"} <= set(cache[key]):
        return {**cache[key], "cached": True}
    result = measure_matmul()
    try:
        from dlkeras.io import write_json_atomic

        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, {**(cache if isinstance(cache, dict) else {}), key: result})
    except OSError:  # a read-only home: the probe simply runs again next time
        pass
    return result


def measure_matmul(size: int = PROBE_SIZE, repeats: int = PROBE_REPEATS) -> dict:
    """GFLOP/s of a size x size matrix multiply in float32 and bfloat16 on the active backend,
    timed in turn (median of `repeats`), so a busy moment of the machine hits both alike."""
    import keras
    import numpy as np

    ops = keras.ops
    values = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    operands = {dtype: ops.convert_to_tensor(values, dtype=dtype) for dtype in ("float32", "bfloat16")}
    times: dict[str, list[float]] = {dtype: [] for dtype in operands}
    for index in range(repeats + 1):
        for dtype, matrix in operands.items():
            started = time.perf_counter()
            ops.convert_to_numpy(ops.cast(ops.sum(ops.matmul(matrix, matrix)), "float32"))  # waits
            if index:  # the first round compiles and warms up
                times[dtype].append(time.perf_counter() - started)
    flops = 2.0 * size**3
    return {f"{name}_gflops": round(flops / statistics.median(times[dtype]) / 1e9, 1)
            for name, dtype in (("float32", "float32"), ("bfloat16", "bfloat16"))}


def apply(choice: Choice) -> None:
    """Sets Keras' global dtype policy."""
    import keras

    keras.mixed_precision.set_global_policy(choice.policy)


def as_float32(model):
    """`model` rebuilt with float32 layers and the same weights; `model` itself when it is float32.

    Under a mixed policy the weights are float32 already, so nothing is rounded.
    """
    import keras

    config = model.get_config()
    rewritten, count = _float32_policies(config)
    if not count:
        return model
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("float32")
    try:
        copy = model.__class__.from_config(rewritten)
        copy.set_weights(model.get_weights())
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return copy


def _float32_policies(node):
    """(node with every mixed dtype policy replaced by float32, how many were replaced)."""
    if isinstance(node, dict):
        if node.get("class_name") == "DTypePolicy" and str(node.get("config", {}).get("name", "")
                                                            ).startswith("mixed_"):
            return {**node, "config": {**node["config"], "name": "float32"}}, 1
        total, out = 0, {}
        for key, value in node.items():
            if key == "dtype" and isinstance(value, str) and value.startswith("mixed_"):
                out[key], found = "float32", 1
            else:
                out[key], found = _float32_policies(value)
            total += found
        return out, total
    if isinstance(node, list):
        pairs = [_float32_policies(value) for value in node]
        return [pair[0] for pair in pairs], sum(pair[1] for pair in pairs)
    return node, 0
