"""Input pipeline vs training throughput of effnet_defects under TensorFlow, JAX and PyTorch.

    .venv/bin/python bench/effnet_defects.py [--images 600] [--epochs 2] [--rounds 2] [--backends ...]

Each backend runs in its own subprocess (Keras fixes the backend when it is imported) on the
recipe's own pipeline (generated images, resize, cache, augmentation) and model. Rounds are
interleaved (every backend once per round, in a rotated order) so that load on a shared machine
hits all of them alike. Per backend it measures, in images per second:

    pipeline   iterating the augmented training dataset alone (cache warm, no model)
    head       images consumed by `fit` in stage 1 (frozen backbone, augmentation on, so no
               feature cache: the pipeline feeds every step)
    finetune   images consumed by `fit` in stage 2 (top:20 unfrozen, discriminative rates)

and prints the median over rounds (with the spread: half the range, in % of the median) side
by side with pipeline/training ratios (above 1: the model waits for nothing) and each backend's
training speed relative to TensorFlow, under a line describing the machine; every round's
numbers go to bench/results/effnet_defects.json (`--results`). The first epoch of each stage
(tracing, compilation) is left out. A benchmark, never a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import machine  # bench/machine.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("tensorflow", "jax", "torch")
MEASURES = ("pipeline", "head", "finetune")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=600, help="generated images (all splits)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per stage (after one warm-up)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved runs per backend")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--results", type=Path, default=machine.RESULTS / "effnet_defects.json",
                        help="JSON file for the machine and every round's numbers")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def worker(images: int, epochs: int) -> dict:
    """Runs in a subprocess with KERAS_BACKEND set; returns images/s of pipeline and stages."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.started = [], 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)

    from dlkeras import config, data, models, tasks
    from dlkeras.engine import optimizers, stages

    recipe = config.apply_overrides(config.load_recipe("effnet_defects"),
                                    [f"data.max_examples={images}"])
    keras.utils.set_random_seed(recipe.train.seed)
    datasets = data.build(recipe.data, recipe.train.seed)
    count = datasets.info.split_sizes["train"]
    for _ in datasets.train:  # first pass decodes and fills the cache
        pass
    started = time.perf_counter()
    for _ in range(epochs):
        for _ in datasets.train:
            pass
    result = {"train_images": count, "pipeline": count * epochs / (time.perf_counter() - started)}
    model = models.build(recipe.model, datasets.info)
    for stage in config.stage_plan(recipe.train):
        stages.set_trainable(model, stage.trainable)
        steps = int(datasets.train.cardinality()) * (epochs + 1)
        task = tasks.get(recipe.task)
        model.compile(optimizer=optimizers.build_optimizer(recipe.train, stage.learning_rate, steps,
                                                      stage.backbone_learning_rate),
                      loss=task.build_loss(recipe), metrics=task.build_metrics())
        timer = EpochTimer()
        model.fit(datasets.train, epochs=epochs + 1, callbacks=[timer], verbose=0)
        result[stage.name] = count * epochs / sum(timer.seconds[1:])
    return result


def run_backend(backend: str, args) -> dict:
    command = [sys.executable, __file__, "--worker", "--images", str(args.images),
               "--epochs", str(args.epochs)]
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no output"}
    return json.loads(lines[-1])


def summarise(runs: dict[str, list[dict]]) -> dict[str, dict]:
    """Per backend: median and spread (half the range, % of the median) of each measure."""
    summary = {}
    for backend, results in runs.items():
        good = [r for r in results if "error" not in r]
        if not good:
            summary[backend] = {"error": results[-1]["error"]}
            continue
        row = {"rounds": len(good), "train_images": good[-1]["train_images"]}
        for measure in MEASURES:
            values = [r[measure] for r in good]
            row[measure] = statistics.median(values)
            row[f"{measure}_spread"] = (max(values) - min(values)) / 2 / row[measure]
        summary[backend] = row
    return summary


def table(summary: dict) -> str:
    base = summary.get("tensorflow", {})
    lines = ["| backend | pipeline img/s | head img/s | finetune img/s | pipeline/head | "
             "pipeline/finetune | head vs TF | finetune vs TF |", "|---" * 8 + "|"]
    for backend, row in summary.items():
        if "error" in row:
            lines.append(f"| {backend} | failed: {row['error']} |" + " |" * 6)
            continue
        rates = [f"{row[m]:.1f} (±{row[f'{m}_spread']:.0%})" for m in MEASURES]
        ratios = [row["pipeline"] / row["head"], row["pipeline"] / row["finetune"]]
        ratios += [row[m] / base[m] if m in base else float("nan") for m in ("head", "finetune")]
        lines.append(f"| {backend} | " + " | ".join(rates + [f"{v:.2f}x" for v in ratios]) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.images, args.epochs)))
        return 0
    described = machine.describe()
    runs: dict[str, list[dict]] = {backend: [] for backend in args.backends}
    for round_index in range(args.rounds):
        for backend in machine.in_turn(args.backends, round_index):
            runs[backend].append(run_backend(backend, args))
            row = runs[backend][-1]
            timing = row.get("error") or ", ".join(f"{m} {row[m]:.1f}" for m in MEASURES)
            print(f"round {round_index + 1}: {backend:10s} {timing}", flush=True)
    summary = summarise(runs)
    train_images = next((r["train_images"] for r in summary.values() if "train_images" in r), 0)
    print(f"\n{machine.summary(described)}")
    print(f"effnet_defects, {train_images} training images, {args.epochs} timed epochs per stage, "
          f"median of {args.rounds} interleaved round(s) (images/s, ± half the range over rounds; "
          "ratios above 1 mean the pipeline outpaces training)\n")
    print(table(summary))
    path = machine.write_results("effnet_defects", {
        "images": args.images, "epochs": args.epochs, "rounds": args.rounds, "runs": runs,
        "summary": summary}, path=args.results, machine=described)
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
