"""The forecasters' raw-input signature: recent days in, the next days out, in TensorFlow ops.

A client sends the latest `input_days` consecutive days, oldest first: `date` ("YYYY-MM-DD"
strings) and one number per day for the target and each covariate, in original units, shaped
(series, input_days). The graph scales them with the training scaler, adds the calendar
features of `timeseries.calendar_features` (computed from the date strings with whole-day
arithmetic), runs the model and answers `forecast` in original units with the `date` of each
forecast day. Dates that are not "YYYY-MM-DD", not real days or not consecutive are refused.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

DATE_PATTERN = r"\d{4}-\d{2}-\d{2}"


def days_from_civil(year, month, day):
    """Days since 1970-01-01 of proleptic Gregorian dates (int64 tensors), era by era."""
    import tensorflow as tf

    year = year - tf.cast(month <= 2, tf.int64)
    era = tf.math.floordiv(year, 400)
    year_of_era = year - era * 400
    day_of_year = (153 * (month + tf.where(month > 2, tf.constant(-3, tf.int64), 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def civil_from_days(days):
    """(year, month, day) int64 tensors of days since 1970-01-01 (`days_from_civil` reversed)."""
    import tensorflow as tf

    shifted = days + 719468
    era = tf.math.floordiv(shifted, 146097)
    day_of_era = shifted - era * 146097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    month = shifted_month + tf.where(shifted_month < 10, tf.constant(3, tf.int64), -9)
    year = year_of_era + era * 400 + tf.cast(month <= 2, tf.int64)
    return year, month, day


def date_strings(days):
    """"YYYY-MM-DD" strings of days since 1970-01-01."""
    import tensorflow as tf

    year, month, day = civil_from_days(days)
    return tf.strings.join([tf.strings.as_string(year, width=4, fill="0"),
                            tf.strings.as_string(month, width=2, fill="0"),
                            tf.strings.as_string(day, width=2, fill="0")], separator="-")


def parse_dates(dates):
    """Days since 1970-01-01 of "YYYY-MM-DD" strings, checked: the format, a real day, and each
    row consecutive and oldest first."""
    import tensorflow as tf

    well_formed = tf.debugging.assert_equal(
        tf.reduce_all(tf.strings.regex_full_match(dates, DATE_PATTERN)), True,
        message='every date must be written "YYYY-MM-DD"')
    with tf.control_dependencies([well_formed]):
        parts = [tf.strings.to_number(tf.strings.substr(dates, start, length), tf.int64)
                 for start, length in ((0, 4), (5, 2), (8, 2))]
    days = days_from_civil(*parts)
    real = tf.debugging.assert_equal(tf.reduce_all(tf.equal(date_strings(days), dates)), True,
                                     message="a date names a day that does not exist")
    with tf.control_dependencies([real]):  # checked first: a wrong day is not a gap
        consecutive = tf.debugging.assert_equal(
            tf.reduce_all(tf.equal(days[:, 1:] - days[:, :-1], 1)), True,
            message="the dates of a series must be consecutive days, oldest first")
    with tf.control_dependencies([consecutive]):
        return tf.identity(days), parts


def calendar(days, parts, kinds, holidays):
    """`timeseries.calendar_features` of each day, in float64: (series, days, features)."""
    import tensorflow as tf

    from dlkeras.data import timeseries

    year, month, _ = parts
    blocks = [tf.zeros([tf.shape(days)[0], tf.shape(days)[1], 0], tf.float64)]
    if "day_of_week" in kinds:  # 1970-01-01 was a Thursday; Monday is 0, as in pandas
        blocks.append(tf.one_hot(tf.math.floormod(days + 3, 7), 7, dtype=tf.float64))
    if "month" in kinds:
        angle = 2 * math.pi * tf.cast(month - 1, tf.float64) / 12
        blocks += [tf.sin(angle)[..., None], tf.cos(angle)[..., None]]
    if "day_of_year" in kinds:
        first = days_from_civil(year, tf.ones_like(year), tf.ones_like(year))
        angle = 2 * math.pi * tf.cast(days - first, tf.float64) / 365.25
        blocks += [tf.sin(angle)[..., None], tf.cos(angle)[..., None]]
    if holidays:
        exact, yearly = timeseries.parse_holidays(holidays)
        dates = date_strings(days)
        flag = tf.zeros_like(days, tf.bool)
        for listed, text in ((exact, dates), (yearly, tf.strings.substr(dates, 5, 5))):
            if listed:
                flag |= tf.reduce_any(tf.equal(text[..., None], tf.constant(sorted(listed))), axis=-1)
        blocks.append(tf.cast(flag, tf.float64)[..., None])
    return tf.concat(blocks, axis=-1)


def build_raw_signature(preprocessing: dict, folder: Path | None = None):
    """The raw-input signature of a forecaster (see the module docstring).

    Args:
        preprocessing: the run's `preprocessing.json` (scaler, calendar, holidays, days).
        folder: unused.
    """
    import tensorflow as tf

    from dlkeras.data import raw_graph, timeseries

    days_in, horizon = preprocessing["input_days"], preprocessing["horizon_days"]
    scaler = preprocessing["scaler"]
    names = raw_graph.input_names(["date", *scaler])
    kinds = preprocessing.get("calendar_features", timeseries.OLD_CALENDAR)
    target_mean, target_std = scaler[preprocessing["target_column"]]
    spec = {names["date"]: tf.TensorSpec([None, days_in], tf.string, name=names["date"])}
    spec.update({names[c]: tf.TensorSpec([None, days_in], tf.float64, name=names[c]) for c in scaler})

    def model_inputs(raw):
        days, parts = parse_dates(raw[names["date"]])
        scaled = [tf.debugging.assert_all_finite((raw[names[c]] - mean) / std,
                                                 f"column {c!r} holds a value that is not finite")
                  for c, (mean, std) in scaler.items()]
        features = [tf.stack(scaled, axis=-1), calendar(days, parts, kinds, preprocessing["holidays"])]
        return tf.cast(tf.concat(features, axis=-1), tf.float32)

    def outputs(raw, forecast):
        days, _ = parse_dates(raw[names["date"]])
        ahead = days[:, -1:] + tf.range(1, horizon + 1, dtype=tf.int64)[None, :]
        return {"forecast": tf.cast(forecast, tf.float64) * target_std + target_mean,
                "date": date_strings(ahead)}

    def feed(split, index):
        windows = np.asarray(split.x[index], dtype=np.float64)  # scaled, back to original units
        first = split.raw.first_dates[index]
        dates = first[:, None] - np.arange(days_in, 0, -1)[None, :]
        values = {names[c]: windows[:, :, j] * std + mean
                  for j, (c, (mean, std)) in enumerate(scaler.items())}
        return {names["date"]: dates.astype(str).astype(object), **values}

    def comparable(answers):
        return (np.asarray(answers["forecast"], dtype=np.float64) - target_mean) / target_std

    return raw_graph.RawSignature(spec=spec, model_inputs=model_inputs, outputs=outputs, feed=feed,
                                  comparable=comparable)
