"""The stage loop: per stage, freeze layers, compile with the stage's optimizer and fit.

Stages are data in the recipe (`train.stages`); one loop drives them. A stage that trains only
the head of a backbone/head model on un-augmented data trains on backbone features computed
once (see `feature_cache`). Finished stages are skipped on resume.
"""

from __future__ import annotations

import math
import sys
import time
from typing import NamedTuple

from dlkeras import config, progress
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
                 features=None, clock=None) -> dict[str, float]:
    """Runs each stage of the recipe; returns seconds per stage trained in this call. The model
    is left with the last stage's weights, as saved in the run.

    Args:
        features: backbone features computed once for the run (`feature_cache.Features`).
        clock: the run's `budget.Clock`; stages that run the whole model are cut to what
            fits in the time it has left (`train.time_budget_minutes`).
    """
    from dlkeras.engine import budget, callbacks, feature_cache

    clock = clock or budget.Clock(0)
    finished = run_dir.finished_stages()
    if finished:
        load_stage_weights(model, run_dir.stage_weights(finished[-1]))
    best_so_far, seconds = None, {}
    plan_of_stages = config.stage_plan(recipe.train)
    for index, stage in enumerate(plan_of_stages):
        if stage.name in finished:
            continue
        trainable = set_trainable(model, stage.trainable)
        started = time.perf_counter()
        prepared = prepare_stage(model, recipe, datasets, stage, features)
        later = sum(other.epochs for other in plan_of_stages[index + 1:]
                    if not feature_cache.can_cache(model, other, recipe.data.augment))
        plan, compiled = plan_stage(prepared, recipe, stage, run_dir, clock,
                                    share=stage.epochs / max(stage.epochs + later, 1),
                                    class_weight=class_weights(recipe, datasets.info))
        if plan.epochs == 0:
            print(f"stage {stage.name!r} skipped: {plan.reason} (train.time_budget_minutes="
                  f"{recipe.train.time_budget_minutes:g})")
        else:
            print(f"stage {stage.name!r}: {describe_length(plan)}, learning rate "
                  f"{stage.learning_rate:g}, trainable={stage.trainable} ({trainable} weights)")
            stage_callbacks = callbacks.build_callbacks(recipe, run_dir, stage, best_so_far, model,
                                                        prepared=prepared)
            if clock.limited:
                stage_callbacks.append(callbacks.BudgetGuard(clock))
            history = fit_stage(model, recipe, datasets, stage, stage_callbacks,
                                prepared=prepared, plan=plan, compiled=compiled)
            check_finite_loss(history.history.get("loss", []), stage.name)
            best_so_far = next(
                (c.best for c in stage_callbacks if isinstance(c, callbacks.AtomicCheckpoints)),
                best_so_far,
            )
        seconds[stage.name] = round(time.perf_counter() - started, 2)
        progress.record(f"stage {stage.name}", seconds[stage.name])
        save_model_atomic(model, run_dir.stage_weights(stage.name), weights_only=True)
        run_dir.mark_stage_finished(stage.name)
    return seconds


def plan_stage(prepared, recipe: config.Recipe, stage, run_dir: RunDir, clock,
               share: float = 1.0, class_weight=None):
    """The stage's length under the time budget; kept in the run so a resume repeats it.

    The steps are timed on the model compiled as the stage compiles it, for the stage's whole
    length. When the stage keeps that length (it fits the budget) and no distribution is
    running, the stage fits that same compiled model instead of tracing its step again.

    Args:
        share: the part of the time left this stage may take: its epochs over those of the
            stages left that run the whole model (time a stage leaves unused goes to the next).
        class_weight: the stage's `fit` class weights, so that the timed step is the stage's.

    Returns:
        (plan, compiled): compiled is True when `fit_model` is ready for the stage's fit.
    """
    from dlkeras.engine import budget, distribution

    kept = run_dir.stage_plans().get(stage.name)
    if kept is not None:
        return budget.from_json(kept), False
    fit_model, train_data, val_data, cached = prepared
    step_seconds = None
    if clock.limited and not cached:
        whole_stage = int(train_data.cardinality()) * stage.epochs
        step_seconds = budget.time_steps(
            fit_model, train_data, lambda: compile_stage(fit_model, recipe, stage, whole_stage, train_data),
            class_weight=class_weight,
        )
    allowed = clock.seconds_left() * share
    plan = budget.plan_stage(stage, int(train_data.cardinality()), int(val_data.cardinality()),
                             step_seconds, allowed)
    if step_seconds is not None:
        print(f"time budget: {clock.seconds_left():.0f} s left, {allowed:.0f} s for stage "
              f"{stage.name!r} at {step_seconds:.3f} s per step: {plan.reason}")
    run_dir.save_stage_plan(stage.name, budget.to_json(plan))
    compiled = (step_seconds is not None and not distribution.active()
                and (plan.epochs, plan.steps_per_epoch) == (stage.epochs, None))
    return plan, compiled


def describe_length(plan) -> str:
    if plan.steps_per_epoch:
        return f"{plan.steps_per_epoch} steps (part of one epoch)"
    return f"{plan.epochs} epoch(s)"


def keep_best_stage(model, recipe: config.Recipe, datasets, run_dir: RunDir,
                    candidates=(), features=None) -> dict:
    """Loads the stage weights that score best on the validation split (`train.keep_stage`).

    Each stage's end-of-stage weights, and each of `candidates` (weights saved under that name
    before training, e.g. "probe": the pretrained model with the linear probe as head), are
    scored by the task's `selection` rank (classification: macro-F1, then accuracy); on a tie
    the later one wins. Only validation data is read. Weights whose backbone is still the
    pretrained one (candidates, head-only stages) are scored on the cached `features`.

    `model` holds the last stage's weights, as `train_stages` leaves it: they are scored as
    they are, and the other weights are loaded one by one (the kept ones last, if need be).

    Returns:
        {"kept_stage": name, "stage_validation": {name: metrics}}, or {} with one candidate
        or `train.keep_stage="last"`.
    """
    import numpy as np

    from dlkeras import tasks
    from dlkeras.models.structure import HEAD

    plan = config.stage_plan(recipe.train)
    names = [*candidates, *(stage.name for stage in plan)]
    if recipe.train.keep_stage != "best" or len(names) < 2:
        return {}
    pretrained_backbone = {*candidates}
    for stage in plan:  # head-only stages up to the first one that moves the backbone
        if stage.trainable != "head":
            break
        pretrained_backbone.add(stage.name)
    task = tasks.get(recipe.task)
    truth = np.asarray(datasets.splits["val"].y)
    scores, loaded = {}, names[-1]  # the model holds the last stage's weights already
    for name in [loaded, *names[:-1]]:
        if name != loaded:
            load_stage_weights(model, run_dir.stage_weights(name))
            loaded = name
        if features is not None and name in pretrained_backbone:
            outputs = model.get_layer(HEAD).predict(features.x["val"], verbose=0)
        else:
            outputs = model.predict(datasets.val, verbose=0)
        scores[name] = task.parity_metrics(np.asarray(outputs, dtype=np.float64), truth)
    scores = {name: scores[name] for name in names}
    kept = names[0]
    for name in names[1:]:
        if task.selection(scores[name]) >= task.selection(scores[kept]):
            kept = name
    if kept != loaded:
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


class PreparedStage(NamedTuple):
    """What one stage fits, and whether it is the head on cached backbone features."""

    fit_model: object
    train_data: object
    val_data: object
    cached: bool = False


def prepare_stage(model, recipe: config.Recipe, datasets, stage, features=None) -> PreparedStage:
    """What a stage fits: the head on cached backbone features, or the whole model on the data."""
    from dlkeras.engine import feature_cache

    if feature_cache.can_cache(model, stage, recipe.data.augment):
        head, train, val = feature_cache.build(
            model, datasets, recipe.data.batch_size, recipe.train.seed, features
        )
        return PreparedStage(head, train, val, cached=True)
    return PreparedStage(model, datasets.train, datasets.val)


def compile_stage(fit_model, recipe: config.Recipe, stage, steps: int, train_data=None) -> None:
    """Compiles with the stage's optimizer (its schedule `steps` long), the loss and metrics.

    Args:
        train_data: the dataset the stage fits; given, the optimizer's and metrics' variables
            are built from its element spec now, so the training step is traced once
            (`backend.build_training_state`).
    """
    from dlkeras import tasks
    from dlkeras.engine import backend, optimizers

    task = tasks.get(recipe.task)
    fit_model.compile(
        optimizer=optimizers.build_optimizer(recipe.train, stage.learning_rate, steps,
                                             stage.backbone_learning_rate),
        loss=task.build_loss(recipe),
        metrics=task.build_metrics(),
    )
    if train_data is not None:
        backend.build_training_state(fit_model, train_data)


def fit_stage(model, recipe: config.Recipe, datasets, stage, stage_callbacks, features=None,
              prepared=None, plan=None, compiled=False, **fit_options):
    """Compiles `model` for one stage (optimizer, loss, metrics of the recipe) and fits it.

    Args:
        stage: a stage of `config.stage_plan` (epochs and learning rate filled in).
        features: backbone features computed earlier (`feature_cache.Features`), if any.
        prepared: `prepare_stage`'s result, when the caller has it already.
        plan: the stage's length under the time budget (`budget.StagePlan`); None: as the
            stage says.
        compiled: the prepared model is compiled for this stage already (`plan_stage`).
        fit_options: `fit` arguments that replace the stage's, e.g. `epochs`, `initial_epoch`.

    Returns:
        The `History` of the fit.
    """
    fit_model, train_data, val_data, _ = prepared or prepare_stage(model, recipe, datasets,
                                                                   stage, features)
    epochs = plan.epochs if plan else stage.epochs
    steps_per_epoch = plan.steps_per_epoch if plan else None
    options = {
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "class_weight": class_weights(recipe, datasets.info),
        "shuffle": False,  # the tf.data pipeline shuffles (seeded) itself
        "verbose": 1 if sys.stdout.isatty() else 2,
        **fit_options,
    }
    from dlkeras.engine import callbacks, distribution

    stage_callbacks = [callbacks.EpochStart(stage.name, recipe.train.seed), *stage_callbacks]
    with distribution.fitting(fit_model):
        if not compiled:
            compile_stage(fit_model, recipe, stage,
                          (steps_per_epoch or int(train_data.cardinality())) * epochs, train_data)
        return fit_model.fit(distribution.fit_batches(train_data),
                             validation_data=distribution.fit_batches(val_data),
                             callbacks=stage_callbacks, **options)


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
