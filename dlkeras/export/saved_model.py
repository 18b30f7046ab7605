"""SavedModel export (TensorFlow backend): the serving signature takes the model's inputs."""

from __future__ import annotations

import shutil
from pathlib import Path


def export_saved_model(model, target: Path) -> Path:
    """Writes `target/` (a SavedModel folder) through a temp folder and a rename."""
    staging = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.export(str(staging), format="tf_saved_model", verbose=False)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def convert(job) -> dict:
    """The FORMATS converter: `job` is a `formats.Conversion`."""
    export_saved_model(job.model, job.target)
    return {}
