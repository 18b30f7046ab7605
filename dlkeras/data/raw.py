"""Raw inputs -> model inputs, from the `preprocessing.json` a run (or an export) carries.

Predict and the export parity gate use this, so every artifact is fed exactly the way the
training pipeline fed the model. The conversion itself belongs to each data kind: `RawInputs`
looks the kind up in `KINDS` and asks its module for `build_raw_converter(preprocessing,
folder)`, a function from one batch of raw inputs to model inputs.

`load_preprocessing` checks the file against `FIELDS` (per kind, the fields its converter and
predictor read, with their types and sane bounds), so a damaged or edited file fails with its
name and the field, before any model is loaded.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from dlkeras.errors import DataError


def load_preprocessing(folder: Path) -> dict:
    """`preprocessing.json` of a run directory or an export folder, checked (`check_preprocessing`).

    Raises:
        DataError: the file is missing, not JSON, or tampered with (wrong types, unknown kind,
            missing keys); the message names the file and the field.
    """
    path = Path(folder) / "preprocessing.json"
    if not path.is_file():
        raise DataError(f"{folder} has no preprocessing.json; pass a run directory or an export folder")
    try:
        preprocessing = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise DataError(f"{path} is not valid JSON ({str(error)[:120]}); {REWRITE}") from None
    check_preprocessing(preprocessing, path)
    return preprocessing


# === What each kind's converter and predictor read ===

REWRITE = ("it was damaged or edited: train the run again, or export it again for an export "
           "folder (a run's files are written only by dlkeras)")
MAX_SIDE = 4096  # pixels: an image side, resized to before the model; larger is tampering
MAX_STEPS = 100_000  # tokens of a text, days of a series


def _count(low: int, high: int):
    return (f"a whole number from {low} to {high}",
            lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _texts(v) -> bool:
    return isinstance(v, list) and all(isinstance(item, str) for item in v)


def _scalers(v) -> bool:  # column -> [mean, std]
    return isinstance(v, dict) and all(
        isinstance(pair, list) and len(pair) == 2 and all(map(_number, pair)) and pair[1] != 0
        for pair in v.values())


TEXT = ("a string", lambda v: isinstance(v, str) and bool(v))
TEXTS = ("a list of strings", _texts)
SCALERS = ("an object of column: [mean, non-zero std]", _scalers)
# field -> (what it must be, test), per kind; "kind", "task" and "class_names" for every kind
FIELDS = {
    "tabular": {
        "numeric": SCALERS,
        "categorical": ("an object of column: [category, ...]",
                        lambda v: isinstance(v, dict) and all(map(_texts, v.values()))),
    },
    "images": {
        "scale": ("a positive number", lambda v: _number(v) and v > 0),
        "input_shape": (f"[height, width, channels] with sides up to {MAX_SIDE} and 1, 3 or 4 "
                        "channels", lambda v: isinstance(v, list) and len(v) == 3
                        and all(_count(1, MAX_SIDE)[1](d) for d in v) and v[2] in (1, 3, 4)),
    },
    "image_folder": {"image_size": _count(1, MAX_SIDE)},
    "text": {"preset": TEXT, "sequence_length": _count(1, MAX_STEPS)},
    "timeseries": {
        "date_column": TEXT, "target_column": TEXT, "covariate_columns": TEXTS,
        "gap_fill": TEXT, "holidays": TEXTS, "input_days": _count(1, MAX_STEPS),
        "horizon_days": _count(1, MAX_STEPS), "scaler": SCALERS,
        "latest": ("an object with the latest 'dates' and values",
                   lambda v: isinstance(v, dict) and _texts(v.get("dates"))),
    },
}


def check_preprocessing(preprocessing, path: Path) -> None:
    """Raises DataError unless `preprocessing` has the fields its kind's converter reads.

    Args:
        preprocessing: the parsed `preprocessing.json`.
        path: the file, named in the message.
    """
    from dlkeras.data import KINDS

    if not isinstance(preprocessing, dict):
        raise DataError(f"{path} must hold a JSON object, found {type(preprocessing).__name__}; "
                        f"{REWRITE}")
    kind = preprocessing.get("kind")
    if not isinstance(kind, str) or kind not in KINDS or kind not in FIELDS:
        raise DataError(f"{path}: unknown data kind {_shown(kind)}; dlkeras writes one of "
                        f"{sorted(KINDS)}; {REWRITE}")
    task = preprocessing.get("task", KINDS[kind].tasks[0])
    if task not in KINDS[kind].tasks:
        raise DataError(f"{path}: task {_shown(task)} does not fit kind {kind!r} (expected "
                        f"{' or '.join(KINDS[kind].tasks)}); {REWRITE}")
    if task == "classification":
        names = preprocessing.get("class_names")
        if not (_texts(names) and len(names) >= 2):
            raise DataError(f"{path}: 'class_names' must be a list of at least two strings, "
                            f"found {_shown(names)}; {REWRITE}")
    for field, (expected, test) in FIELDS[kind].items():
        if field not in preprocessing:
            raise DataError(f"{path}: kind {kind!r} needs field {field!r}, which is missing; "
                            f"{REWRITE}")
        if not test(preprocessing[field]):
            raise DataError(f"{path}: field {field!r} must be {expected}, found "
                            f"{_shown(preprocessing[field])}; {REWRITE}")


def _shown(value) -> str:
    text = json.dumps(value) if value is not None else "none"
    return text if len(text) <= 60 else text[:57] + "..."


def pick(raw, index):
    """The raw inputs at `index` (positions, a slice or an index array) of a split's `raw`: a
    DataFrame of rows, or an array of texts, images or paths."""
    return raw.iloc[index] if hasattr(raw, "iloc") else raw[index]


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
