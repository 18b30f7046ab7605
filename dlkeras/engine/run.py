"""One training run from a resolved recipe: data, run directory, model, stages, report.

`train_recipe` is the whole training path, for the train command, notebooks and tests alike.
"""

from __future__ import annotations

from pathlib import Path

from dlkeras import config
from dlkeras.io import save_model_atomic, write_json_atomic
from dlkeras.runs import RunDir


def train_recipe(recipe: config.Recipe, out: Path, resume: str | None = None):
    """Trains and evaluates `recipe`; returns the run directory and the metrics report.

    Args:
        out: the parent folder of run directories.
        resume: None for a new run, "latest" or a run directory to continue.
    """
    import keras

    from dlkeras import data, models, tasks
    from dlkeras.engine import backend, stages

    backend.configure_precision(recipe.train.mixed_precision)
    keras.utils.set_random_seed(recipe.train.seed)
    datasets = data.build(recipe.data, recipe.train.seed, preset=recipe.model.preset)
    describe_data(datasets.info)
    model = models.build(recipe.model, datasets.info)  # before the run directory: no dead runs
    if resume:
        run_dir = RunDir.find(out, recipe.name, resume)
        run_dir.check_resumable(recipe, datasets.info.fingerprint)
        print(f"resuming {run_dir.path} (finished stages: {run_dir.finished_stages() or 'none'})")
    else:
        run_dir = RunDir.create(out, recipe, datasets.info.fingerprint)
        print(f"run directory: {run_dir.path}")
    write_json_atomic(run_dir.preprocessing_json, {
        "task": recipe.task, "class_names": list(datasets.info.class_names),
        **datasets.info.preprocessing,
    })
    seconds = stages.train_stages(model, recipe, datasets, run_dir)
    save_model_atomic(model, run_dir.model_file)
    return run_dir, tasks.get(recipe.task).report(model, datasets, recipe, run_dir, seconds)


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
