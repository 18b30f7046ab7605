"""effnet_defects' smoke run at full depth (Lite0, `model.depth=1.0`) and at the smoke depth
(`model.depth=0.25`, one block per stage): training, then the export in every format.

    .venv/bin/python bench/effnet_depth.py
    .venv/bin/python bench/effnet_depth.py --rounds 3 --depths 1.0 0.5 0.25

Each round trains the recipe's `SMOKE` variant at each depth (which goes first alternates
between rounds) and exports it as the test suite's `exported` fixture does (every format, 48
parity examples, 0.02 s per latency measurement), all in this process on the TensorFlow
backend. Prints median seconds and the ratios to the first depth; writes them with the
machine to bench/results/effnet_depth.json. A benchmark, never a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import machine  # bench/machine.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("train", "export")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--depths", nargs="+", default=["1.0", "0.25"])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "effnet_depth.json")
    return parser.parse_args(argv)


def train_and_export(depth: str, folder: Path) -> dict[str, float]:
    import keras

    from dlkeras import config
    from dlkeras.engine.run import train_recipe
    from dlkeras.export import export_run
    from dlkeras.recipes import effnet_defects

    keras.backend.clear_session()
    recipe = config.apply_overrides(effnet_defects.RECIPE,
                                    [*effnet_defects.SMOKE, f"model.depth={depth}"])
    began = time.perf_counter()
    run_dir, _ = train_recipe(recipe, folder / "runs")
    trained = time.perf_counter()
    export_run(run_dir.path, None, folder / "saved_models", parity_limit=48, latency_seconds=0.02)
    return {"train": round(trained - began, 2), "export": round(time.perf_counter() - trained, 2)}


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ["KERAS_BACKEND"] = "tensorflow"
    described = machine.describe()
    print(machine.summary(described), flush=True)
    seconds = {depth: {phase: [] for phase in PHASES} for depth in args.depths}
    with tempfile.TemporaryDirectory() as temp:
        for index in range(args.rounds):
            for depth in machine.in_turn(args.depths, index):
                timed = train_and_export(depth, Path(temp) / f"{depth}-{index}")
                for phase in PHASES:
                    seconds[depth][phase].append(timed[phase])
                print(f"round {index + 1} depth {depth}: {timed}", flush=True)
    medians = {depth: {phase: round(statistics.median(values), 2) for phase, values in timed.items()}
               for depth, timed in seconds.items()}
    first = args.depths[0]
    ratios = {depth: {phase: round(medians[first][phase] / medians[depth][phase], 2) for phase in PHASES}
              for depth in args.depths}
    print("\n| model.depth | train | export | train ratio | export ratio |\n|---|---|---|---|---|")
    for depth in args.depths:
        print(f"| {depth} | {medians[depth]['train']} s | {medians[depth]['export']} s | "
              f"{ratios[depth]['train']}x | {ratios[depth]['export']}x |")
    result = {"rounds": args.rounds, "depths": args.depths, "seconds": seconds, "medians": medians,
              f"ratio_to_depth_{first}": ratios}
    path = machine.write_results("effnet_depth", result, path=args.out, machine=described)
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
