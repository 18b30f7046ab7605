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


def run_once(kind: str, files: list[str]) -> dict | str:
    """Wall and CPU seconds of one pytest run of `files`; its output's end when it failed."""
    environment = {**os.environ, "DLKERAS_TEST_PRESTART": KINDS[kind], "TF_CPP_MIN_LOG_LEVEL": "3"}
    return machine.timed_pytest(files, environment)


def main(argv=None) -> int:
    args = parse_args(argv)
    described = machine.describe()
    print(machine.summary(described), flush=True)
    runs = {kind: [] for kind in KINDS}
    for index in range(args.rounds):
        for kind in (list(KINDS) if index % 2 == 0 else list(KINDS)[::-1]):
            found = run_once(kind, args.files)
            runs[kind].append(found)
            print(f"round {index + 1} {kind}: {found}", flush=True)
    medians = {kind: {key: machine.median_of(runs[kind], key, 1) for key in ("wall", "cpu")}
               for kind in KINDS}
    ratios = {key: (round(medians["fresh"][key] / medians["forks"][key], 2)
                    if medians["fresh"][key] and medians["forks"][key] else None)
              for key in ("wall", "cpu")}
    print("\n| | forks | fresh | fresh / forks |\n|---|---|---|---|")
    for key in ("wall", "cpu"):
        print(f"| {key} seconds | {medians['forks'][key]} | {medians['fresh'][key]} | {ratios[key]} |")
    result = {"files": args.files, "rounds": args.rounds, "runs": runs, "medians": medians,
              "fresh_over_forks": ratios}
    path = machine.write_results("test_forks", result, path=args.out, machine=described)
    print(f"\nwritten: {path}")
    print(machine.summary(described))
    return 0


if __name__ == "__main__":
    sys.exit(main())
