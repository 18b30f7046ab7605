"""Raw inputs -> model inputs, from the `preprocessing.json` a run (or an export) carries.

Predict and the export parity gate use this, so every artifact is fed exactly the way the
training pipeline fed the model. The conversion itself belongs to each data kind: `RawInputs`
looks the kind up in `KINDS` and asks its module for `build_raw_converter(preprocessing,
folder)`, a function from one batch of raw inputs to model inputs.
"""

from __future__ import annotations

import json
from pathlib import Path

from dlkeras.errors import DataError


def load_preprocessing(folder: Path) -> dict:
    """`preprocessing.json` of a run directory or an export folder."""
    path = Path(folder) / "preprocessing.json"
    if not path.is_file():
        raise DataError(f"{folder} has no preprocessing.json; pass a run directory or an export folder")
    return json.loads(path.read_text())


class RawInputs:
    """Turns batches of raw inputs into model inputs for one run's preprocessing.

    The kind's converter is built on the first call and kept, so a text converter loads its
    tokenizer once for all later batches.
    """

    def __init__(self, preprocessing: dict, folder: Path | None = None):
        self.preprocessing = preprocessing
        self.kind = preprocessing["kind"]
        self.folder = Path(folder) if folder else None
        self._convert = None

    def __call__(self, raw):
        """Model inputs for a batch of raw inputs (list/array, or DataFrame for tables)."""
        if self._convert is None:
            self._convert = build_converter(self.preprocessing, self.folder)
        return self._convert(raw)


def build_converter(preprocessing: dict, folder: Path | None = None):
    """The raw-input converter of the data kind named in `preprocessing`.

    Raises:
        DataError: the kind takes no raw inputs here (forecasts read raw days in their task).
    """
    import importlib

    from dlkeras.data import KINDS

    kind = KINDS.get(preprocessing["kind"])
    if kind is None or not kind.raw_inputs:
        raise DataError(f"raw inputs of kind {preprocessing['kind']!r} are not supported here")
    return importlib.import_module(kind.module).build_raw_converter(preprocessing, folder)
