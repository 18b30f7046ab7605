"""Daily series pipeline: windows stay inside their split, train-only scaling, date checks."""

import numpy as np
import pandas as pd
import pytest

from dlkeras import config
from dlkeras.data import timeseries
from dlkeras.errors import ConfigError, DataError


def data_config(path, **fields) -> config.DataConfig:
    settings = {"kind": "timeseries", "path": str(path), "date_column": "day",
                "target_column": "sales", "input_days": 7, "horizon_days": 3, "batch_size": 4}
    return config.DataConfig(**{**settings, **fields})


def write(tmp_path, frame, name="series.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def counting_csv(tmp_path, days=100):
    """A series whose value on day i is i, so every window tells which days it holds."""
    dates = pd.date_range("2024-03-01", periods=days, freq="D")
    return write(tmp_path, pd.DataFrame({"day": dates.strftime("%Y-%m-%d"),
                                         "sales": np.arange(days, dtype=float)}))


def test_windows_never_cross_a_split_boundary(tmp_path):
    datasets = timeseries.build(data_config(counting_csv(tmp_path)), seed=0)
    spans = {"train": (0, 70), "val": (70, 85), "test": (85, 100)}  # 70/15/15 of 100 days
    for name, (start, stop) in spans.items():
        windows = datasets.splits[name].raw
        days = np.concatenate([windows.history, windows.actual], axis=1)
        assert days.min() >= start and days.max() < stop, name
        assert (np.diff(days, axis=1) == 1).all()  # 7 input days, then the next 3
        assert len(days) == (stop - start) - 10 + 1  # every window that fits, and no more
        first = pd.Timestamp("2024-03-01") + pd.to_timedelta(windows.actual[:, 0], unit="D")
        assert (windows.first_dates == first.to_numpy().astype("datetime64[D]")).all()
    assert datasets.info.split_sizes == {"train": 61, "val": 6, "test": 6}


def test_tf_data_windows_match_the_split_arrays(daily_sales_csv):
    datasets = timeseries.build(data_config(daily_sales_csv), seed=0)
    for name in ("val", "test"):
        batches = list(getattr(datasets, name).as_numpy_iterator())
        x = np.concatenate([b[0] for b in batches])
        y = np.concatenate([b[1] for b in batches])
        np.testing.assert_allclose(x, datasets.splits[name].x, rtol=0, atol=1e-6)
        np.testing.assert_allclose(y, datasets.splits[name].y, rtol=0, atol=1e-6)
    train = np.concatenate([b[1] for b in datasets.train.as_numpy_iterator()])
    assert train.shape == datasets.splits["train"].y.shape
    assert not np.array_equal(train, datasets.splits["train"].y)  # shuffled


def test_scaler_is_fit_on_training_days_only(daily_sales_csv):
    fields = {"covariate_columns": ("promotion",)}
    datasets = timeseries.build(data_config(daily_sales_csv, **fields), seed=0)
    frame = pd.read_csv(daily_sales_csv)
    train_days = frame.iloc[:84]  # 70% of 120 days
    scaler = datasets.info.preprocessing["scaler"]
    for column in ("sales", "promotion"):
        mean, std = scaler[column]
        assert mean == pytest.approx(train_days[column].mean())
        assert std == pytest.approx(train_days[column].std(ddof=0))
    assert scaler["sales"][0] != pytest.approx(frame["sales"].mean(), abs=0.5)  # trend: differs
    train = datasets.splits["train"]
    mean, std = scaler["sales"]
    np.testing.assert_allclose(train.x[:, :, 0] * std + mean, train.raw.history, atol=1e-3)
    np.testing.assert_allclose(train.y * std + mean, train.raw.actual, atol=1e-3)


def test_features_and_what_predict_needs(daily_sales_csv):
    fields = {"covariate_columns": ("promotion",), "holidays": ("2024-01-01", "02-14")}
    datasets = timeseries.build(data_config(daily_sales_csv, **fields), seed=0)
    info = datasets.info
    names = info.preprocessing["feature_names"]
    assert names[:3] == ["sales", "promotion", "weekday_mon"] and names[-1] == "holiday"
    assert info.input_shape == (7, len(names)) == (7, 2 + 7 + 2 + 1)
    assert info.task == "forecast" and info.num_classes == 0
    latest = info.preprocessing["latest"]
    assert latest["dates"][-1] == info.preprocessing["last_date"] == "2024-04-29"
    assert len(latest["sales"]) == 7
    dates = pd.DatetimeIndex(["2024-02-14", "2024-02-15"])
    calendar, names = timeseries.calendar_features(dates, ("day_of_week", "month"), fields["holidays"])
    assert names[-3:] == ["month_sin", "month_cos", "holiday"]
    assert calendar[0, 2] == 1 and calendar[1, 3] == 1  # Wednesday, Thursday
    assert calendar[:, -1].tolist() == [1.0, 0.0]
    only_weekdays = data_config(daily_sales_csv, calendar_features=("day_of_week",))
    assert timeseries.build(only_weekdays, seed=0).info.input_shape == (7, 1 + 7)


@pytest.mark.parametrize("rule, expected", [
    ("zero", [0.0, 0.0]),
    ("previous", [12.0, 12.0]),
    ("interpolate", [13.0, 14.0]),
])
def test_gaps_are_filled_by_the_stated_rule_and_reported(tmp_path, rule, expected):
    dates = pd.date_range("2024-01-01", periods=60, freq="D")
    frame = pd.DataFrame({"day": dates.strftime("%Y-%m-%d"), "sales": np.arange(60.0)})
    frame = frame.drop(index=[13, 14])  # two missing days after 12.0, before 15.0
    notes = []
    settings = timeseries.series_settings(data_config("x", gap_fill=rule))
    series = timeseries.prepare_series(frame.reset_index(drop=True), settings, "sales.csv", notes)
    assert len(series) == 60
    assert series["sales"].iloc[13:15].tolist() == expected
    assert "filled 2 missing date(s)" in notes[0] and "2024-01-14, 2024-01-15" in notes[0]
    assert rule in notes[0]


def test_gaps_with_the_error_rule_name_the_dates(tmp_path):
    dates = pd.date_range("2024-01-01", periods=60, freq="D").delete([20])
    path = write(tmp_path, pd.DataFrame({"day": dates.strftime("%Y-%m-%d"), "sales": 1.0}))
    with pytest.raises(DataError, match=r"1 date\(s\) are missing.*2024-01-21.*data\.gap_fill"):
        timeseries.build(data_config(path, gap_fill="error"), seed=0)


def test_duplicated_dates_are_an_error(tmp_path):
    dates = pd.date_range("2024-01-01", periods=60, freq="D").strftime("%Y-%m-%d").tolist()
    dates[31] = dates[30]
    path = write(tmp_path, pd.DataFrame({"day": dates, "sales": 1.0}))
    with pytest.raises(DataError, match=r"more than once \(2024-01-31; file rows 32, 33\)"):
        timeseries.build(data_config(path), seed=0)


@pytest.mark.parametrize("change, message", [
    (lambda f: f.assign(day=f["day"].where(f.index != 5, "tomorrow")),
     r"not dates \(file rows 7, e.g. 'tomorrow'\)"),
    (lambda f: f.assign(sales=f["sales"].where(f.index != 3)), r"empty \(NaN\).*'sales': 1.*rows 5"),
    (lambda f: f.assign(sales=f["sales"].astype(str).where(f.index != 4, "many")),
     r"'sales' holds values that are not numbers.*rows 6"),
    (lambda f: f.iloc[:20], r"val split has 3 day\(s\) of 20.*needs 10"),
    (lambda f: f.iloc[::7], r"7 days apart.*daily series"),
    (lambda f: f.rename(columns={"sales": "revenue"}), r"'sales' not found.*'revenue'.*target_column"),
])
def test_bad_input_is_a_clear_data_error(tmp_path, change, message):
    frame = pd.read_csv(counting_csv(tmp_path))
    path = write(tmp_path, change(frame), "changed.csv")
    with pytest.raises(DataError, match=message):
        timeseries.build(data_config(path), seed=0)


def test_missing_file_names_the_setting(tmp_path):
    with pytest.raises(DataError, match=r"none\.csv does not exist.*data\.path"):
        timeseries.build(data_config(tmp_path / "none.csv"), seed=0)


def test_bad_settings_are_config_errors(tmp_path):
    path = counting_csv(tmp_path)
    with pytest.raises(ConfigError, match="gap_fill='mean'"):
        timeseries.build(data_config(path, gap_fill="mean"), seed=0)
    with pytest.raises(ConfigError, match="'Dec 25' is not a date"):
        timeseries.build(data_config(path, holidays=("Dec 25",)), seed=0)
    with pytest.raises(ConfigError, match=r"calendar_features \['week'\] unknown"):
        timeseries.build(data_config(path, calendar_features=("week",)), seed=0)
    with pytest.raises(ConfigError, match="at least 7 days"):
        timeseries.build(data_config(path, input_days=3), seed=0)
