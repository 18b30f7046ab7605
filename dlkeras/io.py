"""Atomic writes (text, JSON, figures, Keras models) and the one matplotlib set-up.

Every file dlkeras leaves behind is written to a temp file in the same folder and renamed,
so a killed process never leaves half a file.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path


def pyplot():
    """matplotlib.pyplot, headless (Agg) except inside a notebook kernel (inline plots)."""
    import logging

    import matplotlib

    # a missing font falls back to another with a warning per font: not the user's concern
    logging.getLogger("matplotlib").setLevel(logging.ERROR)
    if "ipykernel" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_text_atomic(path: Path, text: str) -> None:
    """Writes `text` to `path` through a temp file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data) -> None:
    """Writes JSON atomically (see `write_text_atomic`)."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n")


def save_figure_atomic(figure, path: Path, dpi: int = 110) -> None:
    """Writes a matplotlib figure as PNG through a temp file and a rename, then closes it."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(handle)
    try:
        figure.savefig(temp, format="png", dpi=dpi)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    finally:
        plt.close(figure)
        Path(temp).unlink(missing_ok=True)


def save_model_atomic(model, path: Path, weights_only: bool = False) -> None:
    """Saves a Keras model (`.keras`) or its weights (`.weights.h5`) via a temp file + rename.

    The optimizer's state is left out (Keras would add two or more copies of the weights for
    Adam-like optimizers): every file saved here is loaded for inference or as a stage's
    start, which compiles a fresh optimizer. Resuming inside a stage reads the stage's backup
    instead (`engine.backup`), the one place optimizer state is kept.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".weights.h5" if weights_only else ".keras"
    temp = path.with_name(f".tmp-{os.getpid()}-{path.name.split('.')[0]}{suffix}")
    # the model's optimizer, and those of nested models compiled on their own (a head
    # trained on cached features)
    owners = [layer for layer in [model, *model._flatten_layers(include_self=False)]  # noqa: SLF001
              if getattr(layer, "optimizer", None) is not None]
    optimizers = [owner.optimizer for owner in owners]
    try:
        for owner in owners:
            owner.optimizer = None
        if weights_only:
            model.save_weights(temp)
        else:
            model.save(temp)
        os.replace(temp, path)
    finally:
        for owner, optimizer in zip(owners, optimizers, strict=True):
            owner.optimizer = optimizer
        temp.unlink(missing_ok=True)


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
