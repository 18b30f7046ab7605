"""The first `fit` on TensorFlow with the training state built beforehand, and as Keras leaves it.

    .venv/bin/python bench/first_fit.py                     # 2 rounds, the default models
    .venv/bin/python bench/first_fit.py --rounds 3 --models cnn efficientnet_lite0

Keras 3.15's TensorFlow trainer creates the optimizer's and the metrics' variables inside the
first trace of the training step, and a tf.function that creates variables is traced again:
"keras" below. "built" calls `engine.backend.build_training_state` after compile, as every
stage of a run does, and the step is traced once. Each measurement is a fresh interpreter that
builds the model factory's tiny variant (the shapes of tests/models/test_models.py), compiles
it with Adam and times its first one-epoch `fit` on 30 batches of 4 and then a second one (no
tracing: the step itself); which kind goes first alternates between rounds. The table gives
medians and the keras / built ratio of the first fit. Prints the machine and writes it with
every run to bench/results/first_fit.json. A benchmark, never a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import machine  # bench/machine.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("built", "keras")
MODELS = ("efficientnet_lite0", "cnn", "bert_classifier")

ONE = """
import json, sys, time
sys.path[:0] = [sys.argv[3], sys.argv[3] + "/models"]
import keras
import numpy as np
import tensorflow as tf
from test_models import loss_name, tiny
from dlkeras.engine.backend import build_training_state
model, x, y = tiny(sys.argv[1])
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss_name(sys.argv[1]))
if sys.argv[2] == "built":
    build_training_state(model, tf.data.Dataset.from_tensors((x, y)))
def tile(a):
    return np.tile(a, (30,) + (1,) * (a.ndim - 1))
copies = ({k: tile(v) for k, v in x.items()} if isinstance(x, dict) else tile(x)), tile(y)
seconds = []
for _ in range(2):
    began = time.perf_counter()
    model.fit(*copies, epochs=1, batch_size=len(y), shuffle=False, verbose=0)
    seconds.append(time.perf_counter() - began)
print(json.dumps({"first": round(seconds[0], 2), "second": round(seconds[1], 2)}))
"""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "first_fit.json")
    return parser.parse_args(argv)


def run_once(model: str, kind: str) -> dict | str:
    """Seconds of the first and second fit in a fresh interpreter; its output's end on failure."""
    return machine.fresh_json(ONE, model, kind, str(ROOT / "tests"))



def main(argv=None) -> int:
    args = parse_args(argv)
    described = machine.describe()
    print(machine.summary(described), flush=True)
    runs = {model: {kind: [] for kind in KINDS} for model in args.models}
    for index in range(args.rounds):
        for model in args.models:
            for kind in machine.in_turn(KINDS, index):
                found = run_once(model, kind)
                runs[model][kind].append(found)
                print(f"round {index + 1} {model} {kind}: {found}", flush=True)
    table = {}
    print("\n| model | first fit, built | first fit, keras | keras / built | second fit |")
    print("|---|---|---|---|---|")
    for model in args.models:
        medians = {kind: {key: machine.median_of(runs[model][kind], key)
                          for key in ("first", "second")} for kind in KINDS}
        built, keras_ = medians["built"]["first"], medians["keras"]["first"]
        ratio = round(keras_ / built, 2) if built and keras_ else None
        table[model] = {**medians, "keras_over_built": ratio}
        print(f"| {model} | {built} s | {keras_} s | {ratio}x | {medians['built']['second']} s |")
    result = {"rounds": args.rounds, "runs": runs, "medians": table}
    path = machine.write_results("first_fit", result, path=args.out, machine=described)
    print(f"\nwritten: {path}")
    print(machine.summary(described))
    return 0


if __name__ == "__main__":
    sys.exit(main())
