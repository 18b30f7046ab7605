"""dlkeras' tf.data pipelines with fixed parallelism ("fixed") against tf.data autotuning.

    .venv/bin/python bench/data_autotune.py                   # 3 rounds, 60 s idle
    .venv/bin/python bench/data_autotune.py --rounds 2 --idle 45

Two measurements per contender and round, each in a fresh interpreter on the TensorFlow backend:
- "epoch": seconds of the faster of the second and third epochs of a small CNN's `fit` on
  `pipeline.make_dataset` (12,000 28x28 images, batches of 64, a random-flip-and-noise
  augmentation), the pipeline's throughput with the model's steps;
- "release": seconds that `del` plus `gc.collect()` take on an iterator of a training pipeline
  (`pipeline.make_dataset` of 2,000 rows of 8 numbers, batches of 32) that read one batch and
  then stayed idle `--idle` seconds while the process did other TensorFlow work, as an iterator
  held in a reference cycle does until the garbage collector frees it. The two contenders'
  release runs go side by side (two processes on the machine's cores).
"fixed" is `pipeline.dataset_options()` (autotuning off), `pipeline.parallelism()` parallel calls
and `pipeline.PREFETCH_BATCHES`; "autotune" the same pipelines with autotuning on and
`tf.data.AUTOTUNE` for both. The order alternates between rounds. Prints each run, then the
medians and their autotune / fixed ratios, and writes them with every run and the machine to
bench/results/data_autotune.json. A benchmark, never a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import machine  # bench/machine.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("fixed", "autotune")

SETUP = """
import gc, json, sys, time
import numpy as np
import tensorflow as tf
from dlkeras.data import pipeline
if sys.argv[1] == "autotune":  # the contender: tf.data's autotuning, as on TensorFlow before
    options = pipeline.dataset_options
    def autotuned():
        tuned = options()
        tuned.autotune.enabled = True
        return tuned
    pipeline.dataset_options = autotuned
    pipeline.parallelism = lambda: tf.data.AUTOTUNE
    pipeline.PREFETCH_BATCHES = tf.data.AUTOTUNE
rng = np.random.default_rng(0)
"""

EPOCH = SETUP + """
import keras
x = rng.random((12000, 28, 28, 1), dtype=np.float32)
y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 12000)]
def augment(images):
    images = tf.image.random_flip_left_right(images)
    return images + tf.random.normal(tf.shape(images), stddev=0.01)
dataset = pipeline.make_dataset(x, y, 64, True, 0, augment=augment)
model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(16, 3, activation="relu"),
                          keras.layers.MaxPooling2D(), keras.layers.Conv2D(32, 3, activation="relu"),
                          keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10, "softmax")])
model.compile("adam", "categorical_crossentropy")
seconds = []
for epoch in range(3):
    pipeline.set_epoch(epoch)
    began = time.perf_counter()
    model.fit(dataset, epochs=1, verbose=0)
    seconds.append(time.perf_counter() - began)
print(json.dumps({"first": round(seconds[0], 2), "epoch": round(min(seconds[1:]), 2)}))
"""

RELEASE = SETUP + """
x, y = rng.random((2000, 8), dtype=np.float32), rng.integers(0, 2, 2000)
iterator = iter(pipeline.make_dataset(x, y, 32, True, 0))
next(iterator)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:  # the process goes on with other work
    tf.linalg.matmul(tf.random.normal((200, 200)), tf.random.normal((200, 200)))
began = time.perf_counter()
del iterator
gc.collect()
print(json.dumps({"release": round(time.perf_counter() - began, 2)}))
"""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=float, default=60.0,
                        help="seconds the released iterator stays idle first")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "data_autotune.json")
    return parser.parse_args(argv)


def releases_side_by_side(kinds: list[str], idle: float) -> dict:
    """kind -> the release measurement (or the end of its error output), the kinds' processes
    running at the same time."""
    environment = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    processes = {kind: subprocess.Popen([sys.executable, "-c", RELEASE, kind, str(idle)], cwd=ROOT,
                                        env=environment, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
                 for kind in kinds}
    found = {}
    for kind, process in processes.items():
        out, err = process.communicate()
        found[kind] = err[-600:] if process.returncode else json.loads(out.strip().splitlines()[-1])
    return found


def main(argv=None) -> int:
    args = parse_args(argv)
    described = machine.describe()
    print(machine.summary(described), flush=True)
    runs = {kind: [] for kind in KINDS}
    for index in range(args.rounds):
        order = machine.in_turn(KINDS, index)
        released = releases_side_by_side(order, args.idle)
        for kind in order:
            found = machine.fresh_json(EPOCH, kind)
            if isinstance(found, dict) and isinstance(released[kind], dict):
                found = {**found, **released[kind]}
            elif isinstance(found, dict):
                found = released[kind]  # the failed release's output
            runs[kind].append(found)
            print(f"round {index + 1} {kind}: {found}", flush=True)
    keys = ("epoch", "release")
    medians = {kind: {key: machine.median_of(runs[kind], key) for key in keys} for kind in KINDS}
    worst = {kind: max((run["release"] for run in runs[kind] if isinstance(run, dict)), default=None)
             for kind in KINDS}
    ratio = {key: (round(medians["autotune"][key] / medians["fixed"][key], 2)
                   if medians["autotune"][key] and medians["fixed"][key] else None) for key in keys}
    print("\n| | fixed | autotune | autotune / fixed |\n|---|---|---|---|")
    print(f"| an epoch, the faster of the 2nd and 3rd (median) | {medians['fixed']['epoch']} s | "
          f"{medians['autotune']['epoch']} s | {ratio['epoch']} |")
    print(f"| release after {args.idle:.0f} s idle (median) | {medians['fixed']['release']} s | "
          f"{medians['autotune']['release']} s | {ratio['release']} |")
    print(f"| release, slowest | {worst['fixed']} s | {worst['autotune']} s | |")
    result = {"rounds": args.rounds, "idle_seconds": args.idle, "runs": runs, "medians": medians,
              "slowest_release": worst, "autotune_over_fixed": ratio}
    path = machine.write_results("data_autotune", result, path=args.out, machine=described)
    print(f"\nwritten: {path}")
    print(machine.summary(described))
    return 0


if __name__ == "__main__":
    sys.exit(main())
