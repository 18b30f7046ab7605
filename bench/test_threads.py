"""Test files run by two pytest-xdist workers, with the cores shared between the workers and with
a thread per core in each.

    .venv/bin/python bench/test_threads.py                  # the default files, 2 rounds
    .venv/bin/python bench/test_threads.py --rounds 3 tests/test_workers.py tests/tune

Each round runs the same test files as `make test` does (`-n 2 --dist loadgroup
--no-loadscope-reorder`), once as the suite now runs ("shared": `support.share_cores` gives
each worker's TensorFlow and torch, and the commands it starts, cores // 2 threads within an op)
and once with TF_NUM_INTRAOP_THREADS and OMP_NUM_THREADS set to the core count ("per core":
TensorFlow's and torch's own defaults, which `share_cores` leaves alone when set); which goes
first alternates between rounds. The table gives median wall and CPU seconds and the per core /
shared ratios. Prints the machine and writes it with every run to
bench/results/test_threads.json. A benchmark, never a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import machine  # bench/machine.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("shared", "per_core")
VARIABLES = ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS")
# two groups that take a minute or more each, so that both workers are busy side by side: one
# trains in the test process (TensorFlow), the other starts JAX commands of two processes
FILES = ["tests/models/test_models.py", "tests/test_workers.py"]
XDIST = ["-n", "2", "--dist", "loadgroup", "--no-loadscope-reorder"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", default=FILES)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "test_threads.json")
    return parser.parse_args(argv)


def run_once(kind: str, files: list[str]) -> dict | str:
    environment = {key: value for key, value in os.environ.items() if key not in VARIABLES}
    environment["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if kind == "per_core":
        environment.update({name: str(os.cpu_count() or 1) for name in VARIABLES})
    return machine.timed_pytest([*XDIST, *files], environment)


def main(argv=None) -> int:
    args = parse_args(argv)
    described = machine.describe()
    print(machine.summary(described), flush=True)
    runs = {kind: [] for kind in KINDS}
    for index in range(args.rounds):
        for kind in (KINDS if index % 2 == 0 else KINDS[::-1]):
            found = run_once(kind, args.files)
            runs[kind].append(found)
            print(f"round {index + 1} {kind}: {found}", flush=True)
    medians = {kind: {key: machine.median_of(runs[kind], key, 1) for key in ("wall", "cpu")}
               for kind in KINDS}
    ratios = {key: (round(medians["per_core"][key] / medians["shared"][key], 2)
                    if medians["per_core"][key] and medians["shared"][key] else None)
              for key in ("wall", "cpu")}
    print("\n| | shared | per core | per core / shared |\n|---|---|---|---|")
    for key in ("wall", "cpu"):
        print(f"| {key} seconds | {medians['shared'][key]} | {medians['per_core'][key]} | {ratios[key]} |")
    result = {"files": args.files, "rounds": args.rounds, "runs": runs, "medians": medians,
              "per_core_over_shared": ratios}
    path = machine.write_results("test_threads", result, path=args.out, machine=described)
    print(f"\nwritten: {path}")
    print(machine.summary(described))
    return 0


if __name__ == "__main__":
    sys.exit(main())
