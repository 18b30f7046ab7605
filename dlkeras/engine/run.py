"""One training run from a resolved recipe: data, run directory, model, stages, report.

`train_recipe` is the whole training path, for the train command, notebooks and tests alike.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from dlkeras import config, progress
from dlkeras.io import save_model_atomic, write_json_atomic
from dlkeras.runs import RunDir

MIN_PERFECT_VALIDATION = 50  # validation examples a perfect probe needs to end the run early


def train_recipe(recipe: config.Recipe, out: Path, resume: str | None = None):
    """Trains and evaluates `recipe`; returns the run directory and the metrics report.

    Args:
        out: the parent folder of run directories.
        resume: None for a new run, "latest" or a run directory to continue.
    """
    from dlkeras.engine import backend

    with backend.precision_scope(recipe.train, recorded=recorded_policy(out, recipe, resume)) as chosen:
        return _start(recipe, out, resume, chosen)


def recorded_policy(out: Path, recipe: config.Recipe, resume) -> str | None:
    """The precision policy a run being resumed trained with (its env.json), else None."""
    import json

    from dlkeras.errors import RunError

    if not resume:
        return None
    try:
        environment = json.loads(RunDir.find(out, recipe.name, resume).env_json.read_text())
        return environment.get("precision", {}).get("policy")
    except (RunError, OSError, ValueError, AttributeError):  # open_run_dir says what is wrong
        return None


def _start(recipe: config.Recipe, out: Path, resume, chosen):
    """Seeds, starts the distribution and the clock, and trains in its scope."""
    import keras

    from dlkeras.engine import budget, distribution

    keras.utils.set_random_seed(recipe.train.seed)  # before a multi-worker start, as Keras asks
    replicas = distribution.start(recipe)
    clock = budget.Clock(recipe.train.time_budget_minutes)
    if replicas.mode != "none":
        print(replicas.describe())
    if replicas.processes > 1 and clock.limited:
        # each process would time its own steps and stop at its own moment: a deadlock
        print(f"train.time_budget_minutes={clock.minutes:g} is not applied across processes "
              "(they must all stop at the same step): every stage runs its full length")
        clock = budget.Clock(0)
    with distribution.run_scope():
        if replicas.chief:
            return _train(recipe, out, resume, clock, replicas, chosen)
        with tempfile.TemporaryDirectory(prefix="dlkeras-worker-") as scratch:
            return _train(recipe, out, resume, clock, replicas, chosen, Path(scratch))


def _train(recipe: config.Recipe, out: Path, resume, clock, replicas, chosen,
           scratch: Path | None = None):
    """The run itself; a process other than the chief of a multi-worker run (`scratch` set)
    runs the same steps (the model's computations are shared) and writes only to `scratch`.
    """
    from dlkeras import data, models, tasks
    from dlkeras.engine import distribution, precision, stages

    with progress.step("data"):
        datasets = data.build(recipe.data, recipe.train.seed, preset=recipe.model.preset)
        describe_data(datasets.info)
    with progress.step("model"), distribution.replica_scope():  # before the run directory: no dead runs
        model, fitted = precision.fit_to_model(models.build(recipe.model, datasets.info), chosen,
                                               lambda: models.build(recipe.model, datasets.info))
    if fitted != chosen:
        chosen = fitted
        print(f"precision: {chosen.policy} ({chosen.reason})")
    run_dir = open_run_dir(recipe, out, resume, datasets.info.fingerprint, scratch)
    if resume and run_dir.metrics_json.is_file():  # finished; killed at most while tidying up
        finish(run_dir, recipe)
        print(f"{run_dir.path} had finished: nothing left to train")
        summary = run_dir.report_dir / "summary.md"
        return run_dir, {"summary": summary.read_text() if summary.is_file() else ""}
    run_dir.record_environment(distribution=replicas.to_json(), precision=chosen.to_json())
    write_json_atomic(run_dir.preprocessing_json, {
        "task": recipe.task, "class_names": list(datasets.info.class_names),
        **datasets.info.preprocessing,
    })
    with progress.step("linear probe"):
        training, features, recipe = decide_from_validation(model, recipe, datasets, run_dir)
    if recipe.train.keep_stage == "best" and probe_is_perfect(training,
                                                              len(datasets.splits["val"].y)):
        print("the linear probe is already perfect on validation, where no stage could score "
              "higher: keeping it and skipping the training stages")
        stages.load_stage_weights(model, run_dir.stage_weights("probe"))
        training.update(train_seconds={}, kept_stage="probe")
    else:
        training["train_seconds"] = stages.train_stages(model, recipe, datasets, run_dir,
                                                        features, clock)
        if recipe.train.time_budget_minutes:
            training["stage_lengths"] = run_dir.stage_plans()
        with progress.step("choosing the stage to keep"):
            training.update(stages.keep_best_stage(model, recipe, datasets, run_dir,
                                                   training.get("candidates", []), features))
    model = precision.as_float32(model)  # what predict, export and the report see
    save_model_atomic(model, run_dir.model_file)
    if replicas.processes > 1:
        agree = distribution.weights_agree(model)
        print(f"weights identical on all {replicas.processes} processes: {agree}")
        run_dir.record_environment(distribution={**replicas.to_json(), "weights_identical": agree})
    with progress.step("report"):
        report = tasks.get(recipe.task).report(model, datasets, recipe, run_dir, training)
    finish(run_dir, recipe)
    return run_dir, report


def finish(run_dir: RunDir, recipe: config.Recipe) -> None:
    """Tidies a finished run: its final weights once, resume state only if asked for."""
    run_dir.finish(recipe.train.keep_resume_state,
                   keep_best_checkpoint=recipe.train.keep_stage != "best")


def open_run_dir(recipe: config.Recipe, out: Path, resume, fingerprint: str,
                 scratch: Path | None = None) -> RunDir:
    """A new run directory, or the one `resume` names (checked to match recipe and data).

    With `scratch` (a multi-worker process other than the chief) a private copy in `scratch`
    instead: of the resumed run's files, or a new run there.
    """
    if resume:
        run_dir = RunDir.find(out, recipe.name, resume)
        run_dir.check_resumable(recipe, fingerprint)
        if scratch is not None:
            return run_dir.copy_settled(scratch)  # the chief is already writing to it
        print(f"resuming {run_dir.path} (finished stages: {run_dir.finished_stages() or 'none'})")
        return run_dir
    run_dir = RunDir.create(scratch or out, recipe, fingerprint)
    if scratch is None:
        print(f"run directory: {run_dir.path}")
    return run_dir


def decide_from_validation(model, recipe: config.Recipe, datasets, run_dir: RunDir):
    """The linear probe of a pretrained backbone, and the "auto" choices, made on validation.

    Classification only. A backbone/head model gets its backbone's features computed once
    (kept in the run) and a linear probe fit on them, kept as a candidate for the end of the
    run and, without augmentation, as the head's start (see `save_probe_candidate`).
    `train.class_weight="auto"` becomes the probe's choice (on model inputs when there is no
    backbone).

    Returns:
        (what was decided, for the report; the features or None; the recipe to train with)
    """
    from dlkeras.engine import feature_cache
    from dlkeras.models.structure import has_backbone_and_head
    from dlkeras.tasks import linear_probe

    if recipe.task != "classification":
        return {}, None, recipe
    training, features = {}, None
    if has_backbone_and_head(model):
        features = feature_cache.load_or_extract(model, datasets, run_dir.backbone_features,
                                                 recipe.data.batch_size, recipe.data.augment)
        probe = linear_probe.fit(features, datasets.info.num_classes, recipe.train.class_weight,
                                 recipe.train.seed)
        print(probe.describe())
        training["linear_probe"] = {"c": probe.c, "class_weight": probe.class_weight,
                                    "temperature": round(probe.temperature, 4),
                                    "training_accuracy": probe.training_accuracy,
                                    "validation": probe.validation}
        if save_probe_candidate(model, probe, run_dir, start_from_it=not recipe.data.augment):
            training["candidates"] = ["probe"]
            if not recipe.data.augment and probe.separates_training():
                recipe = skip_head_stages(recipe, training)
        if recipe.train.class_weight == "auto":
            training, _, recipe = resolve_class_weight(recipe, probe.class_weight, training)
        return training, features, recipe
    if recipe.train.class_weight == "auto":
        return resolve_class_weight(recipe, choose_class_weight(recipe, datasets), training)
    return training, features, recipe


def probe_is_perfect(training: dict, validation_size: int) -> bool:
    """True when the kept linear probe classifies every validation example right.

    Only with at least `MIN_PERFECT_VALIDATION` examples: a perfect score on a handful proves
    little.
    """
    validation = training.get("linear_probe", {}).get("validation", {})
    return ("probe" in training.get("candidates", ()) and validation.get("accuracy") == 1.0
            and validation_size >= MIN_PERFECT_VALIDATION)


def choose_class_weight(recipe: config.Recipe, datasets) -> str:
    """"none" or "balanced": what a linear probe on the model inputs scores better on validation.

    Inputs that are not numbers (texts, image files) have no such probe: "none".
    """
    import numpy as np

    from dlkeras.tasks import linear_probe

    if not all(np.asarray(split.x).dtype.kind in "fiub" for split in datasets.splits.values()):
        print("train.class_weight=auto: the inputs are not numeric arrays, so no probe; none")
        return "none"
    probe = linear_probe.fit(input_features(datasets), datasets.info.num_classes, "auto",
                             recipe.train.seed, c_grid=(1.0,))
    print(probe.describe("the model inputs"))
    return probe.class_weight


def resolve_class_weight(recipe: config.Recipe, choice: str, training: dict):
    """`recipe` with `train.class_weight` "auto" replaced by `choice` (recorded and printed)."""
    training["class_weight"] = choice
    print(f"train.class_weight=auto: {choice} (the higher validation macro-F1)")
    resolved = dataclasses.replace(recipe.train, class_weight=choice)
    return training, None, dataclasses.replace(recipe, train=resolved)


def skip_head_stages(recipe: config.Recipe, training: dict) -> config.Recipe:
    """`recipe` without the frozen-backbone stages that lead its plan, when a later stage trains
    more than the head. Called when the head starts from a linear probe that separates the
    training split (many classes, few examples each).

    Such a probe already is the regularised optimum of those stages' problem (a linear head on
    the same frozen features, its strength chosen on validation) and fits training all but
    perfectly. Training the head further only makes it more confident there, and fine-tuning
    then starts with little training loss left to move the encoder: on course titles of 171
    subjects (`bench/quality.py --texts ucla_courses`, 3 seeds, probe training accuracy 1.0)
    skipping the stage raised test accuracy from 0.655 to 0.669. The skipped stages are printed
    and recorded (`skipped_stages`).
    """
    plan = list(recipe.train.stages)
    leading = 0
    while leading < len(plan) and plan[leading].trainable == "head":
        leading += 1
    if leading == 0 or leading == len(plan):
        return recipe
    skipped = [stage.name for stage in plan[:leading]]
    training["skipped_stages"] = skipped
    print(f"skipping stage(s) {', '.join(skipped)}: the head starts from the linear probe, which "
          "already separates the training split; training the head further would only sharpen it")
    return dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, stages=tuple(plan[leading:])))


def input_features(datasets):
    """The model inputs of every split, flattened, as `feature_cache.Features`."""
    import numpy as np

    from dlkeras.engine.feature_cache import SPLITS, Features

    x = {name: np.asarray(datasets.splits[name].x, dtype=np.float32).reshape(
        len(datasets.splits[name].y), -1) for name in SPLITS}
    return Features(x, {name: np.asarray(datasets.splits[name].y) for name in SPLITS})


def save_probe_candidate(model, probe, run_dir: RunDir, start_from_it: bool) -> bool:
    """Keeps the pretrained model with the probe as its head as candidate "probe" weights.

    Validation later weighs it against every stage (`stages.keep_best_stage`), so a run never
    ends worse on validation than its own linear probe. With `start_from_it` the head keeps
    the probe's weights for the first stage (linear probing, then fine-tuning); with
    augmented training data it does not: a head fit to un-augmented features, then trained
    through augmentation and BatchNorm updates, was seen to lose 15 points of validation
    accuracy in the first fine-tuning epoch (effnet_defects).

    Returns:
        False when the head is not one Dense layer (no candidate, the head starts as built).
    """
    from dlkeras.io import save_model_atomic
    from dlkeras.models.structure import HEAD, leaf_layers

    layers = leaf_layers(model.get_layer(HEAD))
    kernel, bias = probe.head_weights()
    if len(layers) != 1 or [tuple(w.shape) for w in layers[0].weights] != [kernel.shape, bias.shape]:
        return False
    path = run_dir.stage_weights("probe")
    if path.is_file():  # a resumed run: the candidate was saved when the run started
        if start_from_it and not run_dir.finished_stages():
            model.load_weights(path)  # the state the first stage started from
        return True
    built = layers[0].get_weights()
    layers[0].set_weights([kernel, bias])
    save_model_atomic(model, path, weights_only=True)
    if start_from_it:
        print("the head starts from the linear probe's solution")
    else:
        layers[0].set_weights(built)
    return True


def describe_data(info) -> None:
    """Prints split sizes, the target and the data notes."""
    sizes = " / ".join(f"{n} {name}" for name, n in info.split_sizes.items())
    if info.task == "classification":
        classes = ", ".join(info.class_names[:10]) + (" ..." if info.num_classes > 10 else "")
        target = f"{info.num_classes} classes ({classes})"
    else:
        target = f"{info.task} of {info.preprocessing.get('horizon_days', '?')} steps"
    print(f"data: {sizes}; {target}; input {info.input_shape}")
    for note in info.notes:
        print(f"data: {note}")
