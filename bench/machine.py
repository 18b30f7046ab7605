"""The machine a bench ran on, the one way a bench writes its results, the median of its runs,
and timed runs of code or of pytest (two kinds of pytest run compared in alternation).

The same bench gives different ratios on a 2-core AVX2 machine and on an AVX-512 one with VNNI
and BF16 (oneDNN, XLA and XNNPACK pick their kernels from those flags), so every figure is kept
with the CPU, cores, flags, package versions and commit it was measured with:

    import machine                                  # bench/machine.py, beside each bench
    described = machine.describe()                  # at the start: the load average is now
    print(machine.summary(described))
    machine.write_results("effnet_defects", table, machine=described)

Nothing here imports a deep-learning package: versions come from the installed metadata, so a
bench pays nothing for describing itself.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
# Linux /proc/cpuinfo names of the instructions deep-learning kernels are chosen by
FLAGS = ("avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16",
         "amx_tile", "amx_bf16", "amx_int8")
# distribution names, as `pip` knows them
PACKAGES = ("keras", "tensorflow", "jax", "torch", "onnxruntime", "ai-edge-litert", "keras-hub",
            "numpy")


def describe() -> dict:
    """What this process runs on, now.

    Returns:
        A JSON-ready dict: `cpu` (model name), `cpu_id` (x86 family and model numbers, which
        name the generation where a virtual machine hides the model), `architecture`,
        `logical_cores` and `physical_cores` available to this process (None when unknown),
        `cpu_quota_cores` (a cgroup CPU limit, None without one), `flags` (the present ones of
        FLAGS), `memory_gib`, `os`, `python`, `packages` (version or None per PACKAGES),
        `date` (UTC, ISO 8601), `git_commit` and `git_dirty` (None outside a checkout) and
        `load_average` (1, 5 and 15 minutes; None where the OS has none).
    """
    cpuinfo = _cpuinfo()
    first = cpuinfo[0] if cpuinfo else {}
    logical = _available_cpus()
    commit, dirty = _git_state()
    return {
        "cpu": first.get("model name") or _cpu_name_fallback(),
        "cpu_id": _cpu_id(first),
        "architecture": platform.machine(),
        "logical_cores": len(logical),
        "physical_cores": _physical_cores(logical),
        "cpu_quota_cores": _cpu_quota(),
        "flags": [flag for flag in FLAGS if flag in set(first.get("flags", "").split())],
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": commit,
        "git_dirty": dirty,
        "load_average": [round(value, 2) for value in os.getloadavg()] if hasattr(os, "getloadavg")
        else None,
    }


def summary(described: dict, packages=("keras", "tensorflow", "jax", "torch")) -> str:
    """One line to print above a table, e.g. `AMD EPYC (family 25 model 17), 2 cores,
    avx512_bf16 avx512_vnni, keras 3.15.1, tensorflow 2.21.0, 2026-12-01, load 0.8`."""
    cores = f"{described['logical_cores']} cores"
    if described["physical_cores"] and described["physical_cores"] != described["logical_cores"]:
        cores += f" ({described['physical_cores']} physical)"
    if described["cpu_quota_cores"]:
        cores += f", quota {described['cpu_quota_cores']:g}"
    name = described["cpu"]
    if described["cpu_id"]:
        name += f" ({described['cpu_id']})"
    versions = [f"{p} {described['packages'][p]}" for p in packages if described["packages"].get(p)]
    load = described["load_average"]
    return ", ".join([name, cores, _headline_flags(described["flags"]), *versions,
                      described["date"][:10], *([f"load {load[0]:g}"] if load else [])])


def write_results(name: str, results, *, path: Path | None = None, machine: dict | None = None,
                  command: list[str] | None = None) -> Path:
    """Writes `{"bench", "machine", "date", "command", "results"}` to bench/results/<name>.json.

    The JSON text is built before any file is opened and lands through a temp file in the same
    folder and a rename, so a table that cannot be written (not JSON-serialisable, a full disk,
    a kill) leaves the previous file as it was. NaN and infinities (a contender that failed, a
    ratio against one) become null, the only way strict JSON has to say "no number".

    Args:
        name: the bench's name, and the file's unless `path` is given.
        results: the bench's numbers; anything `json.dumps` takes.
        path: where to write instead of bench/results/<name>.json.
        machine: `describe()` taken when the bench started (taken now if None).
        command: the command line that produced the numbers (this process's argv if None).

    Returns:
        The path written.

    Raises:
        TypeError, ValueError: `results` is not JSON-serialisable (nothing was written).
    """
    machine = machine if machine is not None else describe()
    document = {"bench": name, "machine": machine, "date": machine["date"],
                "command": list(command if command is not None else [sys.executable, *sys.argv]),
                "results": _finite(results)}
    text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    path = Path(path) if path is not None else RESULTS / f"{name}.json"
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from dlkeras.io import write_text_atomic  # light: no deep-learning package behind it

    write_text_atomic(path, text)
    return path


def fresh_json(code: str, *arguments: str, backend: str = "tensorflow") -> dict | str:
    """What `python -c CODE ARGUMENTS` printed last, as JSON, run in a fresh interpreter in the
    repository on Keras backend `backend`; the end of its error output when it failed."""
    environment = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", code, *arguments], cwd=ROOT, capture_output=True,
                            text=True, env=environment)
    if result.returncode:
        return result.stderr[-600:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def timed_pytest(arguments: list[str], environment: dict) -> dict | str:
    """Wall and CPU seconds (user + system of pytest and everything it started) of one
    `python -m pytest -q -p no:cacheprovider ARGUMENTS` in the repository; the end of its output
    when it failed."""
    import resource
    import time

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             *arguments], cwd=ROOT, capture_output=True, text=True, env=environment)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode:
        return result.stdout[-600:]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": round(wall, 1), "cpu": round(cpu, 1)}


def compare_pytest_runs(name: str, kinds: tuple[str, str], environment_of, pytest_arguments: list[str],
                        files: list[str], rounds: int, out: Path) -> int:
    """Runs pytest on `files` in each of two `kinds` (`environment_of(kind)` gives its
    environment), alternating which goes first between rounds; prints each round, then a table
    of median wall and CPU seconds and the second / first ratios, and writes them with every run
    and the machine to `out` (as bench `name`). Returns 0."""
    first, second = kinds
    described = describe()
    print(summary(described), flush=True)
    runs = {kind: [] for kind in kinds}
    for index in range(rounds):
        for kind in in_turn(kinds, index):
            found = timed_pytest([*pytest_arguments, *files], environment_of(kind))
            runs[kind].append(found)
            print(f"round {index + 1} {kind}: {found}", flush=True)
    medians = {kind: {key: median_of(runs[kind], key, 1) for key in ("wall", "cpu")} for kind in kinds}
    ratios = {key: (round(medians[second][key] / medians[first][key], 2)
                    if medians[second][key] and medians[first][key] else None)
              for key in ("wall", "cpu")}
    print(f"\n| | {first} | {second} | {second} / {first} |\n|---|---|---|---|")
    for key in ("wall", "cpu"):
        print(f"| {key} seconds | {medians[first][key]} | {medians[second][key]} | {ratios[key]} |")
    result = {"files": files, "rounds": rounds, "runs": runs, "medians": medians,
              f"{second}_over_{first}": ratios}
    path = write_results(name, result, path=out, machine=described)
    print(f"\nwritten: {path}")
    print(summary(described))
    return 0


def in_turn(names, round_index: int) -> list:
    """`names` rotated by `round_index`: each goes first in turn, round after round (two names
    alternate), so a busy moment of the shared machine does not favour one of them."""
    names = list(names)
    shift = round_index % len(names) if names else 0
    return names[shift:] + names[:shift]

def median_of(found: list, key: str, digits: int = 2) -> float | None:
    """The median of `key` over the runs of `found` that measured (dicts; a failed run is the
    end of its output, a string), rounded to `digits`; None when none did."""
    values = [entry[key] for entry in found if isinstance(entry, dict)]
    return round(statistics.median(values), digits) if values else None


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


# === Reading the machine ===


def _cpuinfo() -> list[dict[str, str]]:
    """/proc/cpuinfo as one dict per logical CPU (empty off Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    blocks = []
    for block in text.strip().split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        blocks.append(fields)
    return blocks


def _cpu_name_fallback() -> str:
    if sys.platform == "darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                  text=True, timeout=5).stdout.strip() or platform.processor()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _cpu_id(fields: dict[str, str]) -> str | None:
    if "cpu family" not in fields or "model" not in fields:
        return None
    return f"family {fields['cpu family']} model {fields['model']}"


def _available_cpus() -> list[int]:
    """The logical CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _physical_cores(cpus: list[int]) -> int | None:
    """Distinct (package, core) pairs among `cpus`: SMT siblings count once."""
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topology / "physical_package_id").read_text().strip(),
                       (topology / "core_id").read_text().strip()))
        except OSError:
            return None
    return len(cores) or None


def _cpu_quota() -> float | None:
    """A cgroup v2 CPU limit in cores (a container may get less than its affinity shows)."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else round(int(quota) / int(period), 2)


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (AttributeError, ValueError, OSError):
        return None


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _git_state() -> tuple[str | None, bool | None]:
    """HEAD of the checkout the benches live in, and whether tracked files differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10)
        if head.returncode:
            return None, None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None, None
    return head.stdout.strip(), bool(status.stdout.strip()) if status.returncode == 0 else None


def _headline_flags(flags: list[str]) -> str:
    """The flags that set a machine apart: AMX and AVX-512 VNNI/BF16 where present, else the
    widest vector extension."""
    special = [f for f in ("amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni", "avx_vnni")
               if f in flags]
    if special:
        return " ".join(special)
    return next((f for f in ("avx512f", "avx2") if f in flags), "no avx2")
