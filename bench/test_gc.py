"""Test files run with the test session's garbage frozen (`freeze_survivors` of tests/prestart.py:
run by tests/conftest.py after collection and after each test, and by each prestarted server
after loading its libraries) and without (DLKERAS_TEST_GC_FREEZE=0, which turns both off).

    .venv/bin/python bench/test_gc.py                       # the default files, 2 rounds
    .venv/bin/python bench/test_gc.py --out bench/results/test_gc_forks.json \
        tests/tune/test_tune.py tests/test_resume.py tests/tune/test_distributed_search.py

Each round runs the files in one pytest process (no xdist workers), once with the freeze
("frozen") and once without ("collected"); which goes first alternates between rounds. The
default files train a smoke run and convert it to TFLite four times (TensorFlow's converter runs
a full garbage collection each time) and run searches whose trials each start with
`keras.backend.clear_session` (another one). The table gives median wall and CPU seconds and
the collected / frozen ratios. Prints the machine and writes it with every run to
bench/results/test_gc.json. A benchmark, never a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import machine  # bench/machine.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("frozen", "collected")
FILES = ["tests/export/test_gate.py", "tests/tune/test_tune.py"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", default=FILES)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "test_gc.json")
    return parser.parse_args(argv)


def environment_of(kind: str) -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
            "DLKERAS_TEST_GC_FREEZE": "1" if kind == "frozen" else "0"}


def main(argv=None) -> int:
    args = parse_args(argv)
    return machine.compare_pytest_runs("test_gc", KINDS, environment_of, ["-p", "no:xdist"],
                                       args.files, args.rounds, args.out)


if __name__ == "__main__":
    sys.exit(main())
