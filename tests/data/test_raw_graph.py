"""Raw-input signature pieces that need no model: input names and date arithmetic in the graph."""

import numpy as np
import pandas as pd
import pytest

from dlkeras.data import raw_graph, timeseries, timeseries_graph


def test_input_names_are_valid_and_distinct():
    names = raw_graph.input_names(["Monthly Charges", "monthly_charges", "2nd line", "", "tenure"])
    assert names == {"Monthly Charges": "Monthly_Charges", "monthly_charges": "monthly_charges_2",
                     "2nd line": "c_2nd_line", "": "column", "tenure": "tenure"}


def test_days_from_civil_and_back_match_numpy_over_four_centuries():
    import tensorflow as tf

    days = np.arange(np.datetime64("1800-01-01"), np.datetime64("2200-03-01")).astype(np.int64)
    text = np.datetime_as_string(days.astype("datetime64[D]"))
    parts = [tf.constant([int(t[a:b]) for t in text], tf.int64) for a, b in ((0, 4), (5, 7), (8, 10))]
    assert np.array_equal(timeseries_graph.days_from_civil(*parts).numpy(), days)
    assert timeseries_graph.date_strings(tf.constant(days)).numpy().astype(str).tolist() == text.tolist()


@pytest.mark.parametrize("kinds", [("day_of_week", "month"), ("day_of_week", "day_of_year"), ()])
def test_calendar_in_the_graph_equals_the_training_calendar(kinds):
    import tensorflow as tf

    dates = pd.date_range("2023-12-20", "2024-03-05", freq="D")  # a new year and a leap day
    holidays = ["12-25", "2024-01-01", "2024-02-29"]
    expected, _ = timeseries.calendar_features(dates, kinds, holidays)
    text = tf.constant([[str(d.date()) for d in dates]])
    days, parts = timeseries_graph.parse_dates(text)
    found = timeseries_graph.calendar(days, parts, kinds, holidays).numpy()[0]
    np.testing.assert_allclose(found, expected, atol=1e-12)
    assert found[:, -1].sum() == 3  # the holiday flag


@pytest.mark.parametrize("dates, reason", [
    (["2024-01-01", "2024-01-03"], "consecutive"),
    (["2024-01-02", "2024-01-01"], "consecutive"),
    (["2023-02-28", "2023-02-29"], "does not exist"),
    (["2024/01/01", "2024/01/02"], "YYYY-MM-DD"),
])
def test_dates_that_are_not_consecutive_real_days_are_refused(dates, reason):
    import tensorflow as tf

    with pytest.raises(tf.errors.InvalidArgumentError, match=reason):
        timeseries_graph.parse_dates(tf.constant([dates]))
