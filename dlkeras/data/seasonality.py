"""Which calendar features a daily series needs, decided from its fitting days only.

`data.calendar_features=("auto",)` asks for this choice instead of a fixed list:

- "day_of_week" when the days show a weekly pattern: once a centred 7-day mean removes the
  slow changes (trend, season), the weekday means explain at least `WEEKLY_MIN_SHARE` of what
  is left, and an F-test says that share is no accident (p < `MAX_P_VALUE`).
- "day_of_year" (sine and cosine) when the days span at least two years and a yearly pattern
  (two sine/cosine harmonics of the day of year, beside a linear trend) explains at least
  `YEARLY_MIN_SHARE` of the variance left by the trend.

Holidays are a separate setting (`data.holidays`) and are kept whenever they are given. The
caller passes the training and validation days only, so the test split never shapes the model.
"""

from __future__ import annotations

import numpy as np

WEEKLY_MIN_SHARE = 0.05
YEARLY_MIN_SHARE = 0.10
MAX_P_VALUE = 0.01
MIN_YEARLY_DAYS = 730  # two years: one year cannot tell a season from a trend
AUTO = "auto"  # `data.calendar_features=("auto",)`


def weekly_share(values: np.ndarray, weekdays: np.ndarray) -> tuple[float, float]:
    """Share of the de-trended variance that weekday means explain, and its F-test p-value.

    Args:
        values: (days,) consecutive daily values.
        weekdays: (days,) 0 (Monday) .. 6 of each day.
    """
    from scipy import stats

    if len(values) < 21:
        return 0.0, 1.0
    smooth = np.convolve(values, np.ones(7) / 7, mode="valid")  # cancels any weekly pattern
    residual = values[3:-3] - smooth
    days = weekdays[3:-3]
    total = float(((residual - residual.mean()) ** 2).sum())
    if total <= 0:
        return 0.0, 1.0
    means = np.array([residual[days == d].mean() if (days == d).any() else 0.0 for d in range(7)])
    explained = float(((means[days] - residual.mean()) ** 2).sum())
    share = explained / total
    dof = len(residual) - 7
    f_value = (share / 6) / max((1 - share) / dof, 1e-12)
    return share, float(stats.f.sf(f_value, 6, dof))


def yearly_share(values: np.ndarray, day_of_year: np.ndarray) -> float:
    """Share of the variance around a linear trend that two yearly harmonics explain."""
    time = np.arange(len(values), dtype=np.float64) / max(len(values), 1)
    trend = np.stack([np.ones_like(time), time], axis=1)
    angle = 2 * np.pi * (day_of_year - 1) / 365.25
    season = np.stack([np.sin(angle), np.cos(angle), np.sin(2 * angle), np.cos(2 * angle)], axis=1)

    def residual_sum(design: np.ndarray) -> float:
        coefficients, *_ = np.linalg.lstsq(design, values, rcond=None)
        return float(((values - design @ coefficients) ** 2).sum())

    around_trend = residual_sum(trend)
    if around_trend <= 0:
        return 0.0
    return 1 - residual_sum(np.concatenate([trend, season], axis=1)) / around_trend


def choose_calendar(dates, values: np.ndarray) -> dict:
    """The calendar features the days call for, with the evidence behind the choice.

    Args:
        dates: pandas DatetimeIndex of consecutive days (training and validation only).
        values: (days,) the target on those days.

    Returns:
        {"calendar_features": [...], "weekly_share", "weekly_p_value", "yearly_share",
        "span_days", "reason"}.
    """
    values = np.asarray(values, dtype=np.float64)
    weekly, p_value = weekly_share(values, dates.day_of_week.to_numpy())
    has_weekly = weekly >= WEEKLY_MIN_SHARE and p_value < MAX_P_VALUE
    long_enough = len(values) >= MIN_YEARLY_DAYS
    yearly = yearly_share(values, dates.day_of_year.to_numpy()) if long_enough else 0.0
    has_yearly = long_enough and yearly >= YEARLY_MIN_SHARE
    features = ["day_of_week"] * has_weekly + ["day_of_year"] * has_yearly
    year_text = (f"yearly pattern share {yearly:.2f} (needs {YEARLY_MIN_SHARE})" if long_enough
                 else f"{len(values)} days < {MIN_YEARLY_DAYS} (two years) for a yearly pattern")
    reason = (f"weekday share {weekly:.3f} (needs {WEEKLY_MIN_SHARE}, p={p_value:.2g}); "
              f"{year_text}")
    return {"calendar_features": features, "weekly_share": round(weekly, 4),
            "weekly_p_value": p_value, "yearly_share": round(yearly, 4),
            "span_days": len(values), "reason": reason}


def resolve_calendar(fitting, settings: dict, notes: list[str]) -> None:
    """Records the seasonality of the fitting days; resolves "auto" calendar features in place.

    Args:
        fitting: DataFrame of the training and validation days (never the test days), the
            target first.
        settings: the series settings; gains "seasonality", and "calendar_features" becomes
            the chosen list when it asked for "auto".
        notes: gains one line describing an "auto" choice.
    """
    choice = choose_calendar(fitting.index, fitting.iloc[:, 0].to_numpy())
    requested = settings["calendar_features"]
    settings["seasonality"] = {"requested": list(requested), **choice}
    if AUTO in requested:
        settings["calendar_features"] = list(choice["calendar_features"])
        notes.append(f"calendar features (auto, from {len(fitting)} training and validation "
                     f"days): {settings['calendar_features'] or 'none'}; {choice['reason']}")
