"""Test files that start commands, with the prestarted forks of tests/prestart.py and without.

    .venv/bin/python bench/test_forks.py                    # the default files, 2 rounds
    .venv/bin/python bench/test_forks.py --rounds 3 tests/test_resume.py

Each round runs the same test files in one pytest process (`-p no:cacheprovider`), once with
DLKERAS_TEST_PRESTART=1 ("forks") and once with DLKERAS_TEST_PRESTART=0 ("fresh": every command
in a fresh interpreter); which of the two goes first alternates between rounds, so a busy moment
of the shared machine does not favour one of them. The table gives median wall seconds and CPU
seconds (user + system of pytest and everything it started) and the fresh / forks ratios.
Prints the machine and writes it with every run to bench/results/test_forks.json. A benchmark,
never a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import machine  # bench/machine.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
KINDS = {"forks": "1", "fresh": "0"}
FILES = ["tests/test_resume_exact.py", "tests/test_resume.py", "tests/test_validate.py",
         "tests/test_predict.py", "tests/tune/test_tune.py"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", default=FILES)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "test_forks.json")
    return parser.parse_args(argv)


def environment_of(kind: str) -> dict:
    return {**os.environ, "DLKERAS_TEST_PRESTART": KINDS[kind], "TF_CPP_MIN_LOG_LEVEL": "3"}


def main(argv=None) -> int:
    args = parse_args(argv)
    return machine.compare_pytest_runs("test_forks", tuple(KINDS), environment_of, [], args.files,
                                       args.rounds, args.out)


if __name__ == "__main__":
    sys.exit(main())
