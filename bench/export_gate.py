"""An export's gate reference and Keras latency contender, and its SavedModel loads: shared or not.

    .venv/bin/python bench/export_gate.py                   # 2 rounds, Lite0 at 224 px
    .venv/bin/python bench/export_gate.py --rounds 3 --image-size 32

"shared" is what `export.run` does: the parity gate's Keras reference and the latency table's
"keras compiled call" are one tf.function (`latency.compiled_call`), traced once for any batch
size before its first call, and the gate's two SavedModel signatures come from one load
(`loaders.saved_model_object`). "separate" is each on its own: the reference through
`model.predict_on_batch` and the contender a tf.function of its own (each traced at its first
batch size, then again for any size), and a `tf.saved_model.load` per signature.

Each measurement is a fresh interpreter that builds an EfficientNet-Lite0 classifier with random
weights (`models.efficientnet_lite`) and writes it as a SavedModel (untimed), then times:
- calls: the gate's batches (32 and 16 rows), then batch 1 three times and batch 32 three times;
- loads: both signatures of the SavedModel made callable.
Which kind goes first alternates between rounds. The table gives medians and separate / shared
ratios. Prints the machine and writes it with every run to bench/results/export_gate.json.
A benchmark, never a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import machine  # bench/machine.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("shared", "separate")
PARTS = ("calls", "loads")

ONE = """
import json, sys, tempfile, time
import keras
import numpy as np
import tensorflow as tf
from dlkeras.export import latency, loaders
from dlkeras.models import efficientnet_lite

size, kind = int(sys.argv[1]), sys.argv[2]
backbone = efficientnet_lite.build_backbone((size, size, 3))
model = keras.Sequential([backbone, keras.layers.Dense(6, activation="softmax")])
images = np.random.default_rng(0).uniform(0, 1, (32, size, size, 3)).astype("float32")
folder = tempfile.mkdtemp() + "/saved_model"
model.export(folder, verbose=False)

began = time.perf_counter()
if kind == "shared":
    compiled = latency.compiled_call(model, images)
    reference = compiled
else:
    function = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    compiled = lambda x: function(x).numpy()
    reference = model.predict_on_batch
for rows in (32, 16):
    reference(images[:rows])
for rows in (1, 1, 1, 32, 32, 32):
    compiled(images[:rows])
calls = time.perf_counter() - began

began = time.perf_counter()
if kind == "shared":
    loaders.load_saved_model(folder), loaders.load_saved_model_raw(folder)
else:
    tf.saved_model.load(folder), tf.saved_model.load(folder)
loads = time.perf_counter() - began
print(json.dumps({"calls": round(calls, 2), "loads": round(loads, 2)}))
"""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "export_gate.json")
    return parser.parse_args(argv)


def run_once(size: int, kind: str) -> dict | str:
    """Seconds of the calls and the loads in a fresh interpreter; its output's end on failure."""
    return machine.fresh_json(ONE, str(size), kind)


def main(argv=None) -> int:
    args = parse_args(argv)
    described = machine.describe()
    print(machine.summary(described), flush=True)
    runs = {kind: [] for kind in KINDS}
    for index in range(args.rounds):
        for kind in machine.in_turn(KINDS, index):
            runs[kind].append(run_once(args.image_size, kind))
            print(f"round {index + 1} {kind}: {runs[kind][-1]}", flush=True)
    medians = {kind: {part: machine.median_of(runs[kind], part) for part in PARTS} for kind in KINDS}
    ratios = {part: (round(medians["separate"][part] / medians["shared"][part], 2)
                     if medians["shared"][part] and medians["separate"][part] else None)
              for part in PARTS}
    print(f"\nEfficientNet-Lite0 at {args.image_size} px, medians of {args.rounds} rounds")
    print("| part | shared | separate | separate / shared |")
    print("|---|---|---|---|")
    for part in PARTS:
        print(f"| {part} | {medians['shared'][part]} s | {medians['separate'][part]} s | {ratios[part]}x |")
    result = {"rounds": args.rounds, "image_size": args.image_size, "runs": runs,
              "medians": medians, "separate_over_shared": ratios}
    path = machine.write_results("export_gate", result, path=args.out, machine=described)
    print(f"\nwritten: {path}")
    print(machine.summary(described))
    return 0


if __name__ == "__main__":
    sys.exit(main())
