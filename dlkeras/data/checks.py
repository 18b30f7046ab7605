"""Validation that turns bad input into a DataError naming the problem and the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlkeras.errors import DataError

MAX_LISTED = 8


def rows(index) -> str:
    """`index` as 1-based file row numbers (header is row 1, so data starts at row 2)."""
    shown = ", ".join(str(int(i) + 2) for i in list(index)[:MAX_LISTED])
    more = len(index) - MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def check_file(path: str | Path, what: str = "data file") -> Path:
    """Raises DataError unless `path` exists."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{what} {path} does not exist; check data.path (--set data.path=...)")
    return path


def check_columns(frame, columns, path: str, setting: str = "data.feature_columns") -> None:
    """Raises DataError naming every missing column and the columns that do exist."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: column(s) {', '.join(map(repr, missing))} not found; the file has "
            f"{', '.join(map(repr, frame.columns))}. Set {setting} to existing columns."
        )


def check_no_missing_labels(frame, label_column: str, path: str) -> None:
    """Raises DataError listing the rows whose label is empty."""
    empty = frame.index[frame[label_column].isna()]
    if len(empty):
        raise DataError(
            f"{path}: {len(empty)} row(s) have no value in label column {label_column!r} "
            f"(file rows {rows(empty)}); fill or remove them"
        )


def check_no_missing_features(frame, columns, path: str) -> None:
    """Raises DataError naming the columns and rows with NaN or empty feature values."""
    subset = frame[list(columns)]
    bad = subset.isna()
    if bad.to_numpy().any():
        per_column = {c: int(n) for c, n in bad.sum().items() if n}
        bad_rows = frame.index[bad.any(axis=1)]
        raise DataError(
            f"{path}: missing (NaN/empty) feature values in {per_column} "
            f"(file rows {rows(bad_rows)}); fill them, or --set data.missing=drop to drop those rows"
        )


def check_finite(array: np.ndarray, what: str) -> None:
    """Raises DataError if a numeric array holds NaN or infinity."""
    if not np.isfinite(array).all():
        count = int((~np.isfinite(array)).sum())
        raise DataError(f"{what} holds {count} NaN/infinite value(s); clean the input first")


def check_not_empty(count: int, what: str) -> None:
    """Raises DataError when filtering left nothing to train or evaluate on."""
    if count == 0:
        raise DataError(
            f"{what} is empty after filtering; check data.path, data.max_examples and the "
            "label/missing-value settings"
        )


def check_min_classes(class_names, what: str) -> None:
    """Raises DataError when fewer than two classes remain."""
    if len(class_names) < 2:
        raise DataError(
            f"{what} has {len(class_names)} class(es) {list(class_names)}; classification needs "
            "at least two; check data.label_column"
        )


# === Dates (time series) ===


def check_parsed_dates(raw, parsed, path: str, column: str) -> None:
    """Raises DataError listing the rows whose date is empty or cannot be read as a date."""
    bad = parsed.index[parsed.isna()]
    if len(bad):
        examples = ", ".join(repr(str(v)) for v in raw[bad][:3])
        raise DataError(
            f"{path}: {len(bad)} value(s) in date column {column!r} are empty or not dates "
            f"(file rows {rows(bad)}, e.g. {examples}); write dates as YYYY-MM-DD or set "
            "data.date_column to the column that holds them"
        )


def check_unique_dates(dates, path: str, column: str) -> None:
    """Raises DataError naming each date that occurs on more than one row."""
    repeated = dates[dates.duplicated(keep=False)]
    if len(repeated):
        days = sorted({str(d.date()) for d in repeated})
        raise DataError(
            f"{path}: {len(days)} date(s) in column {column!r} occur more than once "
            f"({', '.join(days[:MAX_LISTED])}{' ...' if len(days) > MAX_LISTED else ''}; file "
            f"rows {rows(repeated.index)}); a daily series needs one row per day, so sum or "
            "average the rows of each day first"
        )


def check_daily_dates(dates, path: str, column: str) -> None:
    """Raises DataError when dates carry times of day or are spaced weekly, monthly, ..."""
    timed = dates.index[dates != dates.dt.normalize()]
    if len(timed):
        raise DataError(
            f"{path}: column {column!r} holds times of day (file rows {rows(timed)}); "
            "aggregate to one row per day first"
        )
    spacing = dates.sort_values().diff().dt.days.dropna()
    if len(spacing) and spacing.median() > 1:
        raise DataError(
            f"{path}: dates in column {column!r} are usually {spacing.median():g} days apart; "
            "this pipeline needs a daily series (resample it to days first)"
        )


def check_numeric(frame, columns, path: str) -> None:
    """Raises DataError naming the column and rows whose non-empty values are not numbers."""
    import pandas as pd

    for column in columns:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = frame.index[numbers.isna() & frame[column].notna()]
        if len(bad):
            raise DataError(
                f"{path}: column {column!r} holds values that are not numbers (file rows "
                f"{rows(bad)}, e.g. {str(frame[column][bad[0]])!r}); clean them"
            )


def check_no_empty_values(frame, columns, path: str, fix: str) -> None:
    """Raises DataError naming the columns and rows with NaN/empty values, and `fix`."""
    bad = frame[list(columns)].isna()
    if bad.to_numpy().any():
        per_column = {c: int(n) for c, n in bad.sum().items() if n}
        raise DataError(
            f"{path}: empty (NaN) values in {per_column} (file rows "
            f"{rows(frame.index[bad.any(axis=1)])}); {fix}"
        )
