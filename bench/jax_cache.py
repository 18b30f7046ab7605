"""A JAX run with an empty compilation cache against the same run with a warm one.

    .venv/bin/python bench/jax_cache.py                        # effnet_defects smoke, 2 rounds
    .venv/bin/python bench/jax_cache.py --recipe mlp_churn --rounds 3

Each round runs the recipe's SMOKE variant under KERAS_BACKEND=jax twice, each run in its own
process: once with DLKERAS_CACHE pointing at an empty folder ("cold": every program compiles),
once at a folder a first run filled before the rounds ("warm": programs load from
<cache>/jax, `engine.backend.cache_jax_compilations`). Which of the two goes first alternates
between rounds, so a busy moment of the shared machine does not favour one of them. The table
gives median wall seconds and the cold / warm ratio. Prints the machine and writes it with every
run to bench/results/jax_cache.json.
A benchmark, never a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import machine  # bench/machine.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("cold", "warm")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="effnet_defects")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "jax_cache.json")
    return parser.parse_args(argv)


def run_once(recipe: str, cache: Path, out: Path) -> float | str:
    """Wall seconds of one smoke run under JAX with `cache` as DLKERAS_CACHE; the error text
    when it failed."""
    sys.path.insert(0, str(ROOT))
    from dlkeras import config

    sets = [*config.load_recipe_module(recipe).SMOKE, "callbacks.tensorboard=false"]
    command = [sys.executable, "-m", "dlkeras.train", "--recipe", recipe, "--out", str(out),
               *[a for s in sets for a in ("--set", s)]]
    environment = {**os.environ, "KERAS_BACKEND": "jax", "DLKERAS_CACHE": str(cache),
                   "TF_CPP_MIN_LOG_LEVEL": "3"}
    environment.pop("JAX_COMPILATION_CACHE_DIR", None)  # the folder under DLKERAS_CACHE is timed
    began = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=environment)
    if result.returncode:
        return (result.stderr or result.stdout)[-600:]
    return round(time.perf_counter() - began, 2)


def main(argv=None) -> int:
    args = parse_args(argv)
    described = machine.describe()
    print(machine.summary(described), flush=True)
    seconds: dict[str, list] = {kind: [] for kind in KINDS}
    with tempfile.TemporaryDirectory(prefix="dlkeras-jax-cache-") as scratch:
        scratch = Path(scratch)
        warm = scratch / "warm"
        print(f"filling the warm cache: {run_once(args.recipe, warm, scratch / 'runs')} s", flush=True)
        for index in range(args.rounds):
            for kind in machine.in_turn(KINDS, index):
                cache = warm if kind == "warm" else scratch / f"cold-{index}"
                seconds[kind].append(run_once(args.recipe, cache, scratch / "runs"))
                print(f"round {index + 1} {kind}: {seconds[kind][-1]}", flush=True)
    done = {kind: [s for s in found if isinstance(s, float)] for kind, found in seconds.items()}
    medians = {kind: statistics.median(found) if found else None for kind, found in done.items()}
    ratio = medians["cold"] / medians["warm"] if all(medians.values()) else None
    result = {"recipe": args.recipe, "rounds": args.rounds, "seconds": seconds,
              "median_seconds": medians, "cold_over_warm": ratio}
    path = machine.write_results("jax_cache", result, path=args.out, machine=described)
    print(machine.summary(described))
    print("| cache | median wall s | runs |\n|---|---|---|")
    for kind in KINDS:
        print(f"| {kind} | {medians[kind]} | {len(done[kind])} |")
    print(f"cold / warm: {ratio:.2f}x" if ratio else "cold / warm: no ratio (a run failed)")
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
