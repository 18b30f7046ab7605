"""Seconds per training epoch of the lstm_sales recipe under TensorFlow, JAX and PyTorch.

    .venv/bin/python bench/lstm_sales.py [--model lstm] [--epochs 6] [--rounds 2]

Each backend trains in its own subprocess (Keras fixes the backend when it is imported) on
the recipe's own data, model and optimizer. Rounds are interleaved (tensorflow, jax, torch,
then again in a rotated order) so that a machine busy with other work slows every backend
alike. The first epoch (tracing and compilation) is reported apart from the steady epochs
(median of the others). Each worker also tries the recipe's exports in its own backend, and
a TensorFlow process reloads the model.keras each backend saved and tries them again (a run's
model.keras is backend-neutral, so that is how an export command sees it). The recommendation
is the fastest backend whose model can be exported to every format. Prints a line describing
the machine, a table and the ratios, and writes every run's numbers with the machine to
bench/results/lstm_sales.json (`--json FILE` elsewhere). A benchmark, never a test: nothing
asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import machine  # bench/machine.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("tensorflow", "jax", "torch")
EXPORT_FORMATS = {"saved_model": "tf_saved_model", "onnx": "onnx"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lstm", help="model.name of the recipe to time")
    parser.add_argument("--epochs", type=int, default=6, help="epochs per run (first is apart)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved runs per backend")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--no-exports", action="store_true", help="skip the export attempts")
    parser.add_argument("--json", type=Path, default=machine.RESULTS / "lstm_sales.json",
                        help="JSON file for the machine and every run's numbers")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    parser.add_argument("--export-check", nargs="+", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# === Worker: one backend, one process ===


def worker(args) -> dict:
    """Trains the recipe for `args.epochs` epochs and times each; tries the exports."""
    import keras

    from dlkeras import config, data, models, tasks
    from dlkeras.engine import optimizers

    recipe = config.apply_overrides(config.load_recipe("lstm_sales"), [f"model.name={args.model}"])
    keras.utils.set_random_seed(recipe.train.seed)
    datasets = data.build(recipe.data, recipe.train.seed)
    model = models.build(recipe.model, datasets.info)
    task = tasks.get(recipe.task)
    model.compile(optimizer=optimizers.build_optimizer(recipe.train, recipe.train.learning_rate, 0),
                  loss=task.build_loss(recipe), metrics=task.build_metrics())
    seconds: list[float] = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.started)

    model.fit(datasets.train, validation_data=datasets.val, epochs=args.epochs,
              callbacks=[EpochTimer()], verbose=0)
    if args.save:
        model.save(args.save)
    return {"backend": keras.backend.backend(), "epoch_seconds": seconds,
            "train_windows": datasets.info.split_sizes["train"],
            "batch_size": recipe.data.batch_size,
            "exports": {} if args.no_exports else try_exports(model, recipe.export.formats)}


def try_exports(model, formats) -> dict[str, str]:
    """'ok' or the first line of the error, for each export format Keras can write directly."""
    results = {}
    for name in formats:
        if name not in EXPORT_FORMATS:
            continue  # e.g. tflite: converted from the SavedModel by TensorFlow, any backend
        with tempfile.TemporaryDirectory() as folder:
            target = Path(folder) / ("model.onnx" if name == "onnx" else "model")
            try:
                model.export(str(target), format=EXPORT_FORMATS[name], verbose=False)
                results[name] = "ok"
            except Exception as error:  # noqa: BLE001 - any failure means "cannot export"
                results[name] = f"failed: {type(error).__name__}: {str(error).splitlines()[0][:80]}"
    return results


# === Driver: interleaved subprocesses ===


def export_check(paths: list[str]) -> dict[str, dict[str, str]]:
    """Reloads each saved model.keras (safe mode) in this process and tries the exports."""
    import keras

    from dlkeras import config, models

    recipe = config.load_recipe("lstm_sales")
    for module in set(models.MODELS.values()):
        if module.endswith(".sequence"):
            __import__(module)  # registers the sequence models' own layers
    results = {}
    for path in paths:
        try:
            model = keras.saving.load_model(path, safe_mode=True)
        except Exception as error:  # noqa: BLE001
            results[path] = {"load": f"failed: {type(error).__name__}: {str(error)[:80]}"}
            continue
        results[path] = try_exports(model, recipe.export.formats)
    return results


def run_subprocess(backend: str, arguments: list[str]) -> dict:
    """Runs this script with `arguments` under `backend`; returns its RESULT json."""
    command = [sys.executable, __file__, *arguments]
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode or not lines:
        return {"backend": backend, "error": (result.stderr or result.stdout).strip()[-500:]}
    return json.loads(lines[-1][len("RESULT "):])


def run_worker(backend: str, args, save: Path) -> dict:
    return run_subprocess(backend, ["--worker", "--model", args.model, "--epochs", str(args.epochs),
                                    "--save", str(save),
                                    *(["--no-exports"] if args.no_exports else [])])


def summarise(runs: dict[str, list[dict]], reloaded: dict[str, dict]) -> dict[str, dict]:
    """Per backend: median first and steady epoch, and the export results."""
    summary = {}
    for backend, results in runs.items():
        good = [r for r in results if "error" not in r]
        if not good:
            summary[backend] = {"error": results[-1]["error"]}
            continue
        summary[backend] = {
            "first_epoch": statistics.median(r["epoch_seconds"][0] for r in good),
            "steady_epoch": statistics.median(
                statistics.median(r["epoch_seconds"][1:] or r["epoch_seconds"]) for r in good
            ),
            "exports_in_backend": good[-1]["exports"],
            "exports_reloaded_in_tensorflow": reloaded.get(backend, {}),
            "train_windows": good[-1]["train_windows"],
            "batch_size": good[-1]["batch_size"],
        }
    return summary


def exportable(result: dict) -> bool:
    """Every format exported, in the backend itself or from its model.keras under TensorFlow."""
    direct, reloaded = result["exports_in_backend"], result["exports_reloaded_in_tensorflow"]
    formats = set(direct) | set(reloaded)
    return bool(formats) and all("ok" in (direct.get(f), reloaded.get(f)) for f in formats)


def _exports(results: dict) -> str:
    return ", ".join(f"{k} {'ok' if v == 'ok' else 'FAILED'}" for k, v in results.items()) or "-"


def report(summary: dict[str, dict], args) -> str:
    """The table (seconds per epoch, ratio to the fastest, exports), ratios, recommendation."""
    timed = {b: s for b, s in summary.items() if "error" not in s}
    if not timed:
        return "every backend failed:\n" + json.dumps(summary, indent=2)
    fastest = min(timed, key=lambda b: timed[b]["steady_epoch"])
    first = next(iter(timed.values()))
    lines = [
        f"lstm_sales ({args.model}): {args.epochs} epochs x {args.rounds} round(s) per backend, "
        f"{first['train_windows']} training windows, batch {first['batch_size']}; seconds per "
        "epoch (training + validation)",
        "",
        f"{'backend':<12}{'first epoch':>12}{'steady epoch':>14}{'vs fastest':>12}"
        f"{'30-epoch run':>14}   exports in backend | model.keras reloaded in tensorflow",
    ]
    for backend, s in summary.items():
        if "error" in s:
            lines.append(f"{backend:<12}  failed: {s['error'].splitlines()[-1][:90]}")
            continue
        ratio = s["steady_epoch"] / timed[fastest]["steady_epoch"]
        run = s["first_epoch"] + 29 * s["steady_epoch"]
        lines.append(f"{backend:<12}{s['first_epoch']:>12.2f}{s['steady_epoch']:>14.3f}"
                     f"{ratio:>11.2f}x{run:>14.1f}   {_exports(s['exports_in_backend'])} | "
                     f"{_exports(s['exports_reloaded_in_tensorflow'])}")
    lines.append("")
    names = sorted(timed, key=lambda b: -timed[b]["steady_epoch"])
    for i, slow in enumerate(names):
        for quick in names[i + 1:]:
            lines.append(f"steady epoch {slow} / {quick}: "
                         f"{timed[slow]['steady_epoch'] / timed[quick]['steady_epoch']:.2f}")
    for backend, s in summary.items():
        for name, result in {**s.get("exports_in_backend", {})}.items():
            if result != "ok":
                lines.append(f"{backend} {name} export in-process: {result}")
    candidates = [b for b in timed if exportable(timed[b])]
    if candidates:
        best = min(candidates, key=lambda b: timed[b]["steady_epoch"])
        lines.append(f"recommended backend: {best} (fastest steady epoch whose model exports to "
                     "every format of the recipe)")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return 0
    if args.export_check:
        print("RESULT " + json.dumps(export_check(args.export_check)), flush=True)
        return 0
    described = machine.describe()
    runs: dict[str, list[dict]] = {backend: [] for backend in args.backends}
    with tempfile.TemporaryDirectory() as folder:
        saved = {backend: Path(folder) / f"{backend}.keras" for backend in args.backends}
        for round_index in range(args.rounds):
            for backend in machine.in_turn(args.backends, round_index):
                print(f"round {round_index + 1}: {backend} ...", file=sys.stderr, flush=True)
                runs[backend].append(run_worker(backend, args, saved[backend]))
        reloaded = {}
        if not args.no_exports:
            print("exports of each model.keras under tensorflow ...", file=sys.stderr, flush=True)
            present = {b: str(p) for b, p in saved.items() if p.is_file()}
            checked = run_subprocess("tensorflow", ["--export-check", *present.values()]) if present else {}
            reloaded = {b: checked.get(p, {"load": "failed"}) for b, p in present.items()}
    summary = summarise(runs, reloaded)
    print(machine.summary(described))
    print(report(summary, args))
    path = machine.write_results("lstm_sales", {"model": args.model, "epochs": args.epochs,
                                                "rounds": args.rounds, "runs": runs,
                                                "summary": summary},
                                 path=args.json, machine=described)
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
