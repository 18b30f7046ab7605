"""python -m dlkeras.train --recipe NAME|FILE.toml [--set key=value ...] [--resume [RUN_DIR]]

Reads a recipe, builds the data and the model, trains every stage, evaluates on the test split
and leaves everything in a run directory (see `dlkeras.runs`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from dlkeras import config
from dlkeras.errors import ConfigError, DlkerasError, RunError
from dlkeras.runs import RunDir, save_model_atomic, write_json_atomic


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m dlkeras.train",
        description="Train a dlkeras recipe and evaluate it on its test split.",
        epilog="Backend: set KERAS_BACKEND=tensorflow|jax|torch before running. "
        "Example: python -m dlkeras.train --recipe cnn_digits --set train.epochs=3",
    )
    parser.add_argument("--recipe", help="bundled recipe name or path to a .toml recipe")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a recipe field, e.g. train.learning_rate=3e-4 (repeatable)",
    )
    parser.add_argument("--out", default="runs", type=Path, help="parent folder of run directories")
    parser.add_argument(
        "--resume", nargs="?", const="latest", metavar="RUN_DIR",
        help="continue an interrupted run (default: the recipe's latest run under --out)",
    )
    parser.add_argument("--print-config", action="store_true", help="print the resolved recipe")
    parser.add_argument("--list", action="store_true", help="list the bundled recipes")
    args = parser.parse_args(argv)
    if not (args.list or args.recipe):
        parser.error("--recipe is required (see --list)")
    return args


def resolve_recipe(args) -> config.Recipe:
    """Bundled or TOML recipe, then the command line's overrides."""
    return config.apply_overrides(config.load_recipe(args.recipe), args.overrides)


def list_recipes() -> str:
    from dlkeras.recipes import RECIPES

    lines = []
    for name in RECIPES:
        recipe = config.load_recipe(name)
        lines.append(f"{name:16s} {recipe.description}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.list:
            print(list_recipes())
            return 0
        recipe = resolve_recipe(args)
        if args.print_config:
            print(json.dumps(config.to_dict(recipe), indent=2))
            return 0
        select_backend(recipe)
        run_dir, report = train(recipe, args.out, args.resume)
    except DlkerasError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("\n" + report["summary"])
    print(f"run directory: {run_dir.path}")
    return 0


def select_backend(recipe: config.Recipe) -> str:
    """Uses the recipe's preferred backend unless KERAS_BACKEND is set (before Keras loads)."""
    if "KERAS_BACKEND" not in os.environ and recipe.backend:
        if "keras" in sys.modules:
            return os.environ.get("KERAS_BACKEND", "tensorflow")
        os.environ["KERAS_BACKEND"] = recipe.backend
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    print(f"backend: {backend}")
    return backend


def train(recipe: config.Recipe, out: Path, resume: str | None = None):
    """Trains and evaluates `recipe`; returns the run directory and the metrics report."""
    import keras

    from dlkeras import data, models, tasks

    tasks.check_task(recipe.task)
    configure_precision(recipe.train.mixed_precision)
    keras.utils.set_random_seed(recipe.train.seed)
    datasets = data.build(recipe.data, recipe.train.seed, preset=recipe.model.preset)
    describe_data(datasets.info)
    if resume:
        run_dir = RunDir.find(out, recipe.name, resume)
        run_dir.check_resumable(recipe, datasets.info.fingerprint)
        print(f"resuming {run_dir.path} (finished stages: {run_dir.finished_stages() or 'none'})")
    else:
        run_dir = RunDir.create(out, recipe, datasets.info.fingerprint)
        print(f"run directory: {run_dir.path}")
    write_json_atomic(run_dir.preprocessing_json, {
        "class_names": list(datasets.info.class_names), **datasets.info.preprocessing,
    })
    model = models.build(recipe.model, datasets.info)
    seconds = train_stages(model, recipe, datasets, run_dir)
    save_model_atomic(model, run_dir.model_file)
    return run_dir, tasks.report(model, datasets, recipe, run_dir, seconds)


def train_stages(model, recipe: config.Recipe, datasets, run_dir: RunDir) -> dict[str, float]:
    """Runs each stage of the recipe with one loop; finished stages are skipped on resume.

    A stage that trains only the head of a backbone/head model on un-augmented data trains
    on backbone features computed once (see `feature_cache`).
    """
    from dlkeras import callbacks, optim

    finished = run_dir.finished_stages()
    if finished:
        model.load_weights(run_dir.stage_weights(finished[-1]))
    best_so_far, seconds = None, {}
    for stage in config.stage_plan(recipe.train):
        if stage.name in finished:
            continue
        trainable = optim.set_trainable(model, stage.trainable)
        print(f"stage {stage.name!r}: {stage.epochs} epoch(s), learning rate "
              f"{stage.learning_rate:g}, trainable={stage.trainable} ({trainable} weights)")
        started = time.perf_counter()
        stage_callbacks = callbacks.build_callbacks(recipe, run_dir, stage, best_so_far, model)
        history = fit_stage(model, recipe, datasets, stage, stage_callbacks)
        seconds[stage.name] = round(time.perf_counter() - started, 2)
        check_finite_loss(history.history.get("loss", []), stage.name)
        best_so_far = next(
            (c.best for c in stage_callbacks if isinstance(c, callbacks.AtomicCheckpoints)), None
        )
        save_model_atomic(model, run_dir.stage_weights(stage.name), weights_only=True)
        run_dir.mark_stage_finished(stage.name)
    return seconds


def fit_stage(model, recipe: config.Recipe, datasets, stage, stage_callbacks, **fit_options):
    """Compiles `model` for one stage (optimizer, loss, metrics of the recipe) and fits it.

    A stage that trains only the head of a backbone/head model on un-augmented data trains
    on backbone features computed once (see `feature_cache`).

    Args:
        stage: a stage of `config.stage_plan` (epochs and learning rate filled in).
        fit_options: `fit` arguments that replace the stage's, e.g. `epochs`, `initial_epoch`.

    Returns:
        The `History` of the fit.
    """
    from dlkeras import feature_cache, optim, tasks

    fit_model, train_data, val_data = model, datasets.train, datasets.val
    if feature_cache.can_cache(model, stage, recipe.data.augment):
        fit_model, train_data, val_data, _ = feature_cache.build(
            model, datasets, recipe.data.batch_size, recipe.train.seed
        )
    steps = int(train_data.cardinality()) * stage.epochs
    fit_model.compile(
        optimizer=optim.build_optimizer(recipe.train, stage.learning_rate, steps,
                                        stage.backbone_learning_rate),
        loss=tasks.build_loss(recipe),
        metrics=tasks.build_metrics(recipe),
    )
    options = {
        "epochs": stage.epochs,
        "class_weight": class_weights(recipe, datasets.info),
        "shuffle": False,  # the tf.data pipeline shuffles (seeded) itself
        "verbose": 1 if sys.stdout.isatty() else 2,
        **fit_options,
    }
    return fit_model.fit(train_data, validation_data=val_data, callbacks=stage_callbacks, **options)


def class_weights(recipe: config.Recipe, info) -> dict[int, float] | None:
    setting = recipe.train.class_weight
    if setting != "none" and recipe.task != "classification":
        raise ConfigError(f"train.class_weight={setting!r} applies to classification only")
    if setting == "balanced":
        return info.class_weights
    if setting == "none":
        return None
    raise ConfigError(f"train.class_weight={setting!r}; choose 'none' or 'balanced'")


def check_finite_loss(losses: list[float], stage: str) -> None:
    if losses and not math.isfinite(losses[-1]):
        raise RunError(
            f"stage {stage!r}: the loss became {losses[-1]} at epoch {len(losses)} and training "
            "stopped; lower train.learning_rate or set train.clipnorm=1.0"
        )


def describe_data(info) -> None:
    sizes = " / ".join(f"{n} {name}" for name, n in info.split_sizes.items())
    if info.task == "classification":
        classes = ", ".join(info.class_names[:10]) + (" ..." if info.num_classes > 10 else "")
        target = f"{info.num_classes} classes ({classes})"
    else:
        target = f"{info.task} of {info.preprocessing.get('horizon_days', '?')} steps"
    print(f"data: {sizes}; {target}; input {info.input_shape}")
    for note in info.notes:
        print(f"data: {note}")


def configure_precision(mixed_precision: bool) -> None:
    """Mixed precision on an accelerator only: on CPUs it makes training 2-9x slower."""
    import keras

    if not mixed_precision:
        return
    if accelerator_present():
        keras.mixed_precision.set_global_policy("mixed_float16")
        print("mixed precision: mixed_float16")
    else:
        print("mixed precision requested but no GPU found; training in float32 (faster on CPUs)")


def accelerator_present() -> bool:
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "jax":
        import jax

        return jax.devices()[0].platform == "gpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


if __name__ == "__main__":
    sys.exit(main())
