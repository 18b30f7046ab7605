"""The float, dynamic and int8 TFLite conversions of one SavedModel: one converter each, and one
converter shared by the three (as an export does).

    .venv/bin/python bench/tflite_converters.py saved_models/effnet_defects/1/saved_model
    .venv/bin/python bench/tflite_converters.py --rounds 3 PATH_TO_SAVED_MODEL

PATH is the `saved_model/` folder of an export (its `model.keras` beside it). Each round
converts the three modes both ways (which way goes first alternates between rounds), with the
same 20 random calibration inputs for int8 (an image model's single input), and checks that
both ways write the same bytes. Prints median seconds and the ratio; writes them with the
machine to bench/results/tflite_converters.json. A benchmark, never a test: nothing asserts.
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
MODES = ("float", "dynamic", "int8")
KINDS = ("shared", "separate")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("saved_model", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "bench" / "results" / "tflite_converters.json")
    return parser.parse_args(argv)


def convert_all(saved_model: Path, model, folder: Path, shared: dict | None) -> dict[str, bytes]:
    import numpy as np

    from dlkeras.export import tflite

    shape = [1, *model.inputs[0].shape[1:]]
    written = {}
    for mode in MODES:
        rng = np.random.default_rng(0)

        def calibration():
            for _ in range(20):
                yield [rng.random(shape).astype("float32")]

        target = folder / f"{mode}.tflite"
        tflite.export_tflite(saved_model, model, target, mode, calibration, shared)
        written[mode] = target.read_bytes()
    return written


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from dlkeras.models import load_inference_model

    described = machine.describe()
    print(machine.summary(described), flush=True)
    model = load_inference_model(args.saved_model.parent / "model.keras")
    if len(model.inputs) != 1:
        print("this bench calibrates a single-input model (an image model's export)")
        return 2
    seconds, same = {kind: [] for kind in KINDS}, []
    with tempfile.TemporaryDirectory() as temp:
        for index in range(args.rounds):
            written = {}
            for kind in machine.in_turn(KINDS, index):
                folder = Path(temp) / f"{kind}-{index}"
                folder.mkdir()
                began = time.perf_counter()
                written[kind] = convert_all(args.saved_model, model, folder,
                                            {} if kind == "shared" else None)
                seconds[kind].append(round(time.perf_counter() - began, 2))
                print(f"round {index + 1} {kind}: {seconds[kind][-1]} s", flush=True)
            same.append(written["shared"] == written["separate"])
    medians = {kind: round(statistics.median(values), 2) for kind, values in seconds.items()}
    ratio = round(medians["separate"] / medians["shared"], 2)
    print(f"\n| shared converter | one converter each | ratio | same bytes |\n|---|---|---|---|\n"
          f"| {medians['shared']} s | {medians['separate']} s | {ratio}x | {all(same)} |")
    result = {"saved_model": str(args.saved_model), "rounds": args.rounds, "seconds": seconds,
              "medians": medians, "separate_over_shared": ratio, "same_bytes": all(same)}
    path = machine.write_results("tflite_converters", result, path=args.out, machine=described)
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
