"""Learning-rate range test: the loss over a short sweep of exponentially growing rates.

The rate grows from `START` to `END` over at most `STEPS` batches of the training data, as in
Smith's range test; the sweep stops once the loss (a running average) exceeds `STOP_RATIO`
times its minimum. The suggested rate is where the loss falls fastest against the log of the
rate, on a centred moving average (no lag) before its minimum: the minimum itself lies where
training is about to turn unstable, and it drifts to higher rates the longer the sweep has
trained. The suggestion is compared with the recipe's rate.
"""

from __future__ import annotations

import math
import time

import numpy as np

from dlkeras.diagnostics import Result
from dlkeras.io import pyplot, save_figure_atomic

START, END = 1e-6, 1.0
STEPS = 400  # 67 per decade, when the time allows
MIN_STEPS = 60  # 10 per decade: fewer cannot place a rate within the 10x asked of it
SECONDS = 60.0  # the sweep's share of a check that takes a minute or two
SMOOTHING = 0.9  # running average that decides when the sweep stops
WINDOW = 0.075  # of the sweep's steps: the centred moving average the suggestion reads
SLOPE_SPAN = 0.025  # of the sweep's steps either side of the slope's estimate
STOP_RATIO = 4.0  # the sweep ends when the smoothed loss passes 4x its minimum
AGREEMENT = 10.0  # a suggestion within 10x of the recipe's rate agrees with it
MIN_DROP = 0.1  # the moving average must fall 10% below its start to read a rate from it


def sweep(model, batches, seconds: float = SECONDS) -> tuple[np.ndarray, np.ndarray]:
    """(rates, losses) of a range test on `model` (compiled; its weights change).

    Args:
        batches: an iterator of (inputs, targets) batches, one per step.
        seconds: the sweep takes `STEPS` steps, or as many as fit this time, at least
            `MIN_STEPS` (timed on two steps at the start rate, after compiling).
    """
    for _ in range(3):
        model.optimizer.learning_rate = START
        started = time.perf_counter()
        model.train_on_batch(*next(batches))
    step_seconds = time.perf_counter() - started
    steps = int(np.clip(seconds / max(step_seconds, 1e-6), MIN_STEPS, STEPS))
    rates = np.geomspace(START, END, steps)
    losses, average, best = [], 0.0, math.inf
    for step, rate in enumerate(rates):
        model.optimizer.learning_rate = float(rate)
        loss = float(model.train_on_batch(*next(batches), return_dict=True)["loss"])
        if not math.isfinite(loss):
            break
        losses.append(loss)
        average = SMOOTHING * average + (1 - SMOOTHING) * loss
        best = min(best, average / (1 - SMOOTHING ** (step + 1)))
        if average / (1 - SMOOTHING ** (step + 1)) > STOP_RATIO * best and step > 10:
            break
    return rates[:len(losses)], np.asarray(losses)


def smooth(losses: np.ndarray, steps: int) -> np.ndarray:
    """A centred moving average over `WINDOW` of a `steps`-step sweep (fewer at the ends)."""
    half = max(1, round(WINDOW * steps / 2))
    return np.array([losses[max(0, i - half):i + half + 1].mean() for i in range(len(losses))])


def suggest(rates: np.ndarray, losses: np.ndarray) -> float | None:
    """The rate of steepest descent before the smoothed minimum; None when the loss never fell."""
    steps = round(np.log(END / START) / np.log(rates[1] / rates[0])) + 1 if len(rates) > 1 else 1
    span = max(1, round(SLOPE_SPAN * steps))
    if len(losses) < 2 * span + 2:
        return None
    curve = smooth(losses, steps)
    lowest = int(np.argmin(curve))
    if lowest <= span or curve[lowest] > (1 - MIN_DROP) * curve[0]:
        return None
    logs = np.log10(rates)
    slopes = [(curve[min(i + span, lowest)] - curve[max(i - span, 0)])
              / (logs[min(i + span, lowest)] - logs[max(i - span, 0)])
              for i in range(1, lowest)]
    if min(slopes) >= 0:
        return None
    return float(rates[1 + int(np.argmin(slopes))])


def check(model, batches, recipe_rate: float, png, stage: str = "") -> Result:
    """Runs the sweep, plots it to `png` and compares the suggestion with `recipe_rate`."""
    rates, losses = sweep(model, batches)
    suggestion = suggest(rates, losses)
    plot(rates, losses, suggestion, recipe_rate, png, stage)
    numbers = {"stage": stage, "recipe_learning_rate": recipe_rate, "suggested": suggestion,
               "steps": len(losses), "rates": rates.tolist(), "losses": losses.tolist()}
    if suggestion is None:
        return Result("learning-rate range", "warn", f"the loss did not fall {MIN_DROP:.0%} over "
                      f"{len(losses)} steps of the sweep: no rate to suggest ({png.name})",
                      advice="the model learns slowly at every rate (a small data set, a slow "
                      "model): keep the recipe's rate, or check the data and labels",
                      numbers=numbers)
    ratio = suggestion / recipe_rate
    numbers["ratio"] = ratio
    line = (f"suggests {suggestion:.2g} for stage {stage!r}, {ratio:.2g}x the recipe's "
            f"{recipe_rate:g} ({png.name})")
    if 1 / AGREEMENT <= ratio <= AGREEMENT:
        return Result("learning-rate range", "pass", line, numbers=numbers)
    return Result("learning-rate range", "warn", line,
                  advice=f"try the stage's learning rate near {suggestion:.2g}", numbers=numbers)


def plot(rates, losses, suggestion, recipe_rate, path, stage: str) -> None:
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(rates, losses, color="0.75", linewidth=0.8, label="training loss")
    if len(losses) > 1:
        steps = round(np.log(END / START) / np.log(rates[1] / rates[0])) + 1
        axis.plot(rates, smooth(losses, steps), label="centred moving average")
    axis.axvline(recipe_rate, color="tab:green", linestyle="--", label=f"recipe {recipe_rate:g}")
    if suggestion:
        axis.axvline(suggestion, color="tab:red", linestyle=":", label=f"suggested {suggestion:.2g}")
    axis.set_xscale("log")
    axis.set_xlabel("learning rate")
    axis.set_ylabel("loss")
    axis.set_title(f"learning-rate range test, stage {stage!r}")
    axis.legend()
    save_figure_atomic(figure, path)
