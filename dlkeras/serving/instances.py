"""Request instances -> raw inputs -> predictions as JSON, per data kind (`CODECS`).

What one instance is, by the data kind in the model's preprocessing.json:

    text          "my bag never arrived"  or  {"text": "my bag never arrived"}
    tabular       {"tenure": 3, "contract": "Month-to-month", ...}: one table row, by column
    images        {"b64": "<base64 of a PNG/JPEG/... file>"}  or  {"image": {"b64": ...}}
    image_folder  the same as images
    timeseries    recent days, as columns {"date": [...], "<target>": [...], <covariates>} or as
                  rows [{"date": ..., "<target>": ...}, ...]; {} forecasts from the export's own
                  latest days

Each instance is decoded on its own (`Codec.decode`), so a bad one is refused with its index;
the decoded raw inputs of a whole micro-batch are then converted by the data kind's own
converter (`data.raw.build_converter`; table rows: the same transform straight from the rows,
`data.tabular.build_row_converter`; forecasts: `data.timeseries`), exactly as
`python -m dlkeras.predict` converts them, and answered by the model's runtime.

Predictions: classification `{"label": ..., "probabilities": {class: p, ...}}`; forecasts
`{"dates": [...], "values": [...]}` (plus "low", "high" and "interval" where the run measured
prediction intervals).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlkeras.serving.request import RequestError, json_type

SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Codec:
    """How one data kind's instances are read and answered.

    Attributes:
        decode: (instance, where, preprocessing, scratch) -> the raw input the kind's converter
            takes; raises RequestError (or DataError) naming `where` ("instance 3").
        predict: (served model, raw inputs of a batch) -> one JSON-ready prediction per input;
            runs in the model's worker thread.
        describe: preprocessing -> the inputs, outputs and an example instance (metadata).
        blocking: decoding does file or pandas work, so it runs off the event loop.
        converter: (preprocessing, folder) -> the function from a batch of decoded instances to
            model inputs; None: the data kind's converter (`data.raw.build_converter`).
    """

    decode: Callable
    predict: Callable
    describe: Callable
    blocking: bool = False
    converter: Callable | None = None


class Scratch:
    """A temporary folder for one request's decoded files: made on first use, removed by `close`."""

    def __init__(self):
        self._folder: Path | None = None
        self._count = 0

    def file(self, suffix: str = "") -> Path:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="dlkeras-serve-"))
        self._count += 1
        return self._folder / f"{self._count}{suffix}"

    def close(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


# === Classification: texts, table rows, images ===


def decode_text(instance, where: str, preprocessing: dict, scratch: Scratch) -> str:
    text = instance.get("text") if isinstance(instance, dict) and set(instance) == {"text"} else instance
    if not isinstance(text, str):
        raise RequestError(f'{where}: expected a text, as a JSON string or {{"text": "..."}}, found '
                           f"a {json_type(instance)}")
    if not text.strip():
        raise RequestError(f"{where}: the text is empty; send the text to classify")
    return text


def decode_row(instance, where: str, preprocessing: dict, scratch: Scratch) -> dict:
    if not _plain_row(instance, preprocessing["numeric"], preprocessing["categorical"]):
        check_row(instance, where, preprocessing)
    return instance


def check_row(instance, where: str, preprocessing: dict) -> None:
    """Every check of a table row, each refusal naming the fix (RequestError)."""
    columns = [*preprocessing["numeric"], *preprocessing["categorical"]]
    if not isinstance(instance, dict):
        raise RequestError(f"{where}: a table row is a JSON object of column: value, found a "
                           f"{json_type(instance)}; the model reads {columns}")
    nested = [key for key, value in instance.items() if not isinstance(value, SCALARS)]
    if nested:
        raise RequestError(f"{where}: column(s) {nested} hold a list or an object; send one number "
                           "or string per column")
    missing = [column for column in columns if column not in instance]
    if missing:
        raise RequestError(f"{where}: the row lacks column(s) {missing}; the model reads {len(columns)} "
                           "columns (GET /v1/models/<name>/metadata shows them in an example row)")
    for column in preprocessing["numeric"]:
        if not _number(instance[column]):
            raise RequestError(f"{where}: column {column!r} must be a number, found "
                               f"{json.dumps(instance[column])[:40]}")


def _plain_row(instance, numeric, categorical) -> bool:
    """The common row, checked fast: an object of scalars with every column, each numeric
    column a finite JSON number (a row `check_row` passes). Anything else takes `check_row`,
    which accepts what else it can (numbers in strings, booleans) and names the problem."""
    if type(instance) is not dict:
        return False
    for column in categorical:
        if column not in instance:
            return False
    for column in numeric:
        value = instance.get(column)
        if (type(value) is not float and type(value) is not int) or not -1e308 < value < 1e308:
            return False  # also missing, nan, inf and integers too large for a float
    return _SCALAR_TYPES.issuperset(map(type, instance.values()))


_SCALAR_TYPES = frozenset(SCALARS)


def _number(value) -> bool:
    """A JSON number, or a string holding one (as a CSV cell would)."""
    try:
        return isinstance(value, (int, float, str)) and math.isfinite(float(value))
    except (ValueError, OverflowError):  # not a number; an integer too large for a float
        return False


def decode_image(instance, where: str, preprocessing: dict, scratch: Scratch) -> str:
    """Writes the image to a scratch file and checks it opens (the converter reads the file)."""
    from dlkeras.data.image_decode import open_image

    if isinstance(instance, dict) and set(instance) == {"image"}:
        instance = instance["image"]
    if not (isinstance(instance, dict) and isinstance(instance.get("b64"), str)):
        raise RequestError(f'{where}: an image is sent as {{"b64": "<base64 of the image file>"}}, '
                           f"found a {json_type(instance)}")
    try:
        content = base64.b64decode(instance["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(f'{where}: "b64" is not valid base64; encode the image file\'s bytes '
                           "with standard base64 (e.g. `base64 -w0 digit.png`)") from None
    path = scratch.file(".image")
    path.write_bytes(content)
    image, reason = open_image(path)
    if image is None:
        reason = reason.replace(repr(str(path)), "the sent bytes").replace(str(path), "the sent bytes")
        raise RequestError(f"{where}: the image cannot be decoded: {reason}; send a JPEG, PNG, BMP, "
                           "GIF, TIFF or WebP file as base64")
    image.close()
    return str(path)


def classify(model, raw) -> list[dict]:
    """Labels and probabilities per class name for a batch of raw inputs."""
    probabilities = np.asarray(model.predict(model.convert(raw)), dtype=np.float64)
    names = model.preprocessing["class_names"]
    return [{"label": names[best], "probabilities": dict(zip(names, row))}
            for best, row in zip(probabilities.argmax(axis=1).tolist(), probabilities.tolist())]


def _row_converter(preprocessing: dict, folder: Path):
    from dlkeras.data.tabular import build_row_converter

    return build_row_converter(preprocessing, folder)


def _classification_outputs(preprocessing: dict) -> dict:
    classes = len(preprocessing["class_names"])
    return {"label": tensor("DT_STRING", -1), "probabilities": tensor("DT_FLOAT", -1, classes)}


def describe_text(preprocessing: dict) -> dict:
    return {"inputs": {"text": tensor("DT_STRING", -1)}, "outputs": _classification_outputs(preprocessing),
            "instance": 'a text: "..." or {"text": "..."}', "example": "my bag never arrived"}


def describe_rows(preprocessing: dict) -> dict:
    numeric, categorical = preprocessing["numeric"], preprocessing["categorical"]
    example = {column: round(mean, 2) for column, (mean, _) in numeric.items()}
    example |= {column: values[0] for column, values in categorical.items()}
    inputs = {column: tensor("DT_FLOAT", -1) for column in numeric}
    inputs |= {column: tensor("DT_STRING", -1) | {"categories": values}
               for column, values in categorical.items()}
    return {"inputs": inputs, "outputs": _classification_outputs(preprocessing),
            "instance": "a table row: an object of column: value", "example": example}


def describe_images(preprocessing: dict) -> dict:
    if "input_shape" in preprocessing:
        height, width, channels = preprocessing["input_shape"]
    else:
        height = width = preprocessing["image_size"]
        channels = 3
    return {"inputs": {"image": tensor("DT_STRING", -1) | {"decoded_to": [height, width, channels]}},
            "outputs": _classification_outputs(preprocessing),
            "instance": f'{{"b64": "<base64 image file>"}}, resized to {height}x{width}x{channels}',
            "example": {"b64": "<base64 of a PNG or JPEG file>"}}


# === Forecasts: recent days ===


def decode_days(instance, where: str, preprocessing: dict, scratch: Scratch):
    """The latest `input_days` days of the instance (or of the export) as a daily DataFrame."""
    import pandas as pd

    from dlkeras.data import timeseries
    from dlkeras.errors import DataError
    from dlkeras.tasks.forecast_predict import latest_days

    days = preprocessing["input_days"]
    columns = [preprocessing["date_column"], preprocessing["target_column"],
               *preprocessing["covariate_columns"]]
    shape = (f'{{"{columns[0]}": ["2024-01-01", ...], "{columns[1]}": [...], ...}} with at least '
             f"{days} days (or {{}} for the model's own latest days)")
    if instance == {}:
        return latest_days(preprocessing, None)
    if not (isinstance(instance, dict) or (isinstance(instance, list) and instance
                                           and all(isinstance(row, dict) for row in instance))):
        raise RequestError(f"{where}: recent days are sent as {shape}, found a {json_type(instance)}")
    try:
        frame = pd.DataFrame(instance)
    except (ValueError, TypeError) as error:  # ragged columns, scalars instead of lists
        raise RequestError(f"{where}: recent days are sent as {shape}; {str(error)[:120]}") from None
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise RequestError(f"{where}: the days lack column(s) {missing}; the model reads {columns}")
    frame.index = range(-1, len(frame) - 1)  # the checks name a file's rows (index + 2): days 1, 2, ...
    try:
        series = timeseries.prepare_series(frame, preprocessing, where, [])
    except DataError as error:
        raise RequestError(str(error).replace("file rows", "days")) from None
    if len(series) < days:
        raise RequestError(f"{where}: the model forecasts from {days} consecutive days but the "
                           f"instance covers {len(series)}; send at least {days} days")
    return series.iloc[-days:]


def forecast(model, windows: list) -> list[dict]:
    """The `horizon_days` after each window: dates and values in the target's units."""
    import pandas as pd

    from dlkeras.data import timeseries
    from dlkeras.tasks.forecast_predict import interval_bounds

    preprocessing = model.preprocessing
    features = np.stack([timeseries.model_inputs(window, preprocessing) for window in windows])
    mean, std = preprocessing["scaler"][preprocessing["target_column"]]
    values = np.asarray(model.predict(features), dtype=np.float64) * std + mean
    predictions = []
    for window, row in zip(windows, values):
        dates = pd.date_range(window.index[-1] + pd.Timedelta(days=1), periods=len(row), freq="D")
        prediction = {"dates": [str(day.date()) for day in dates], "values": [float(v) for v in row]}
        bounds = interval_bounds(model.loaded, row)
        if bounds is not None:
            low, high, label = bounds
            prediction |= {"low": [float(v) for v in low], "high": [float(v) for v in high],
                           "interval": label}
        predictions.append(prediction)
    return predictions


def describe_days(preprocessing: dict) -> dict:
    date, target = preprocessing["date_column"], preprocessing["target_column"]
    covariates = list(preprocessing["covariate_columns"])
    horizon = preprocessing["horizon_days"]
    inputs = {date: tensor("DT_STRING", -1, -1), target: tensor("DT_FLOAT", -1, -1)}
    inputs |= {column: tensor("DT_FLOAT", -1, -1) for column in covariates}
    return {"inputs": inputs,
            "outputs": {"dates": tensor("DT_STRING", -1, horizon), "values": tensor("DT_FLOAT", -1, horizon)},
            "instance": (f"at least {preprocessing['input_days']} recent days as columns "
                         f"{[date, target, *covariates]}, or {{}} for the model's own latest days"),
            "example": {}}


def tensor(dtype: str, *sizes: int) -> dict:
    """A TensorFlow Serving tensor description: dtype and dimension sizes (-1: any)."""
    return {"dtype": dtype, "tensor_shape": {"dim": [{"size": str(size)} for size in sizes]}}


CODECS: dict[str, Codec] = {  # by preprocessing.json's "kind"
    "text": Codec(decode_text, classify, describe_text),
    "tabular": Codec(decode_row, classify, describe_rows, converter=_row_converter),
    "images": Codec(decode_image, classify, describe_images, blocking=True),
    "image_folder": Codec(decode_image, classify, describe_images, blocking=True),
    "timeseries": Codec(decode_days, forecast, describe_days, blocking=True),
}


def decode_all(model, instances: list, positions: list[int], scratch: Scratch) -> list:
    """The raw inputs of `instances` (whose indexes in the request are `positions`)."""
    decode = functools.partial(model.codec.decode, preprocessing=model.preprocessing, scratch=scratch)
    return [decode(instance, f"instance {position}") for instance, position in zip(instances, positions)]
