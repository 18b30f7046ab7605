"""The stage loop: per stage, freeze layers, compile with the stage's optimizer and fit.

Stages are data in the recipe (`train.stages`); one loop drives them. A stage that trains only
the head of a backbone/head model on un-augmented data trains on backbone features computed
once (see `feature_cache`). Finished stages are skipped on resume.
"""

from __future__ import annotations

import math
import sys
import time

from dlkeras import config
from dlkeras.errors import ConfigError, RunError
from dlkeras.io import save_model_atomic
from dlkeras.models.structure import containers, in_head, leaf_layers
from dlkeras.runs import RunDir


def check_trainable(trainable: str) -> None:
    """Raises ConfigError unless `trainable` is "all", "head" or "top:N"."""
    if trainable in ("all", "head") or (trainable.startswith("top:") and trainable[4:].isdigit()):
        return
    raise ConfigError(f"stage trainable={trainable!r}; use 'all', 'head' or 'top:N' (e.g. 'top:20')")


def set_trainable(model, trainable: str) -> int:
    """Freezes layers for a stage and returns the number of trainable weights left.

    Args:
        trainable: "all"; "head" (layers named head*); "top:N" (the last N layers with weights,
            plus the head). Frozen BatchNormalization layers run in inference mode.
    """
    check_trainable(trainable)
    layers = leaf_layers(model)
    if trainable == "all":
        chosen = set(map(id, layers))
    else:
        count = int(trainable[4:]) if trainable.startswith("top:") else 0
        chosen = {id(layer) for layer in layers[len(layers) - count :]} if count else set()
        chosen |= {id(layer) for layer in layers if in_head(model, layer)}
    for container in containers(model):
        container.trainable = True
    for layer in layers:
        layer.trainable = id(layer) in chosen
    if not model.trainable_weights:
        raise ConfigError(
            f"stage trainable={trainable!r} leaves nothing to train in model {model.name!r}"
        )
    return len(model.trainable_weights)


def train_stages(model, recipe: config.Recipe, datasets, run_dir: RunDir,
                 features=None) -> dict[str, float]:
    """Runs each stage of the recipe; returns seconds per stage trained in this call.

    Args:
        features: backbone features computed once for the run (`feature_cache.Features`).
    """
    from dlkeras.engine import callbacks

    finished = run_dir.finished_stages()
    if finished:
        load_stage_weights(model, run_dir.stage_weights(finished[-1]))
    best_so_far, seconds = None, {}
    for stage in config.stage_plan(recipe.train):
        if stage.name in finished:
            continue
        trainable = set_trainable(model, stage.trainable)
        print(f"stage {stage.name!r}: {stage.epochs} epoch(s), learning rate "
              f"{stage.learning_rate:g}, trainable={stage.trainable} ({trainable} weights)")
        started = time.perf_counter()
        stage_callbacks = callbacks.build_callbacks(recipe, run_dir, stage, best_so_far, model)
        history = fit_stage(model, recipe, datasets, stage, stage_callbacks, features)
        seconds[stage.name] = round(time.perf_counter() - started, 2)
        check_finite_loss(history.history.get("loss", []), stage.name)
        best_so_far = next(
            (c.best for c in stage_callbacks if isinstance(c, callbacks.AtomicCheckpoints)), None
        )
        save_model_atomic(model, run_dir.stage_weights(stage.name), weights_only=True)
        run_dir.mark_stage_finished(stage.name)
    return seconds


def keep_best_stage(model, recipe: config.Recipe, datasets, run_dir: RunDir,
                    candidates=()) -> dict:
    """Loads the stage weights that score best on the validation split (`train.keep_stage`).

    Each stage's end-of-stage weights, and each of `candidates` (weights saved under that name
    before training, e.g. "probe": the pretrained model with the linear probe as head), are
    scored by the task's `selection` rank (classification: macro-F1, then accuracy); on a tie
    the later one wins. Only validation data is read.

    Returns:
        {"kept_stage": name, "stage_validation": {name: metrics}}, or {} with one candidate
        or `train.keep_stage="last"`.
    """
    import numpy as np

    from dlkeras import tasks

    names = [*candidates, *(stage.name for stage in config.stage_plan(recipe.train))]
    if recipe.train.keep_stage != "best" or len(names) < 2:
        return {}
    task = tasks.get(recipe.task)
    truth = np.asarray(datasets.splits["val"].y)
    scores = {}
    for name in names:
        load_stage_weights(model, run_dir.stage_weights(name))
        outputs = np.asarray(model.predict(datasets.val, verbose=0), dtype=np.float64)
        scores[name] = task.parity_metrics(outputs, truth)
    kept = names[0]
    for name in names[1:]:
        if task.selection(scores[name]) >= task.selection(scores[kept]):
            kept = name
    load_stage_weights(model, run_dir.stage_weights(kept))
    shown = "; ".join(f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
                      for name, metrics in scores.items())
    print(f"validation by stage: {shown}; keeping the weights of stage {kept!r}")
    return {"kept_stage": kept, "stage_validation": scores}


def load_stage_weights(model, path) -> None:
    """Loads a stage's weights; the optimizer state saved beside them is not needed."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(path)


def fit_stage(model, recipe: config.Recipe, datasets, stage, stage_callbacks, features=None,
              **fit_options):
    """Compiles `model` for one stage (optimizer, loss, metrics of the recipe) and fits it.

    Args:
        stage: a stage of `config.stage_plan` (epochs and learning rate filled in).
        features: backbone features computed earlier (`feature_cache.Features`), if any.
        fit_options: `fit` arguments that replace the stage's, e.g. `epochs`, `initial_epoch`.

    Returns:
        The `History` of the fit.
    """
    from dlkeras import tasks
    from dlkeras.engine import feature_cache, optimizers

    fit_model, train_data, val_data = model, datasets.train, datasets.val
    if feature_cache.can_cache(model, stage, recipe.data.augment):
        fit_model, train_data, val_data = feature_cache.build(
            model, datasets, recipe.data.batch_size, recipe.train.seed, features
        )
    steps = int(train_data.cardinality()) * stage.epochs
    task = tasks.get(recipe.task)
    fit_model.compile(
        optimizer=optimizers.build_optimizer(recipe.train, stage.learning_rate, steps,
                                             stage.backbone_learning_rate),
        loss=task.build_loss(recipe),
        metrics=task.build_metrics(),
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
    """The per-class loss weights of `train.class_weight` ("balanced": from the training split)."""
    return info.class_weights if recipe.train.class_weight == "balanced" else None


def check_finite_loss(losses: list[float], stage: str) -> None:
    """Raises RunError when the last epoch's loss is NaN or infinite."""
    if losses and not math.isfinite(losses[-1]):
        raise RunError(
            f"stage {stage!r}: the loss became {losses[-1]} at epoch {len(losses)} and training "
            "stopped; lower train.learning_rate or set train.clipnorm=1.0"
        )
