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


def environment_of(kind: str) -> dict:
    environment = {key: value for key, value in os.environ.items() if key not in VARIABLES}
    environment["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if kind == "per_core":
        environment.update({name: str(os.cpu_count() or 1) for name in VARIABLES})
    return environment


def main(argv=None) -> int:
    args = parse_args(argv)
    return machine.compare_pytest_runs("test_threads", KINDS, environment_of, XDIST, args.files,
                                       args.rounds, args.out)


if __name__ == "__main__":
    sys.exit(main())
