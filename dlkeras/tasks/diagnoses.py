"""Diagnoses of a run's training curves: the classic training checklist applied to history.csv.

Per stage, from the rows of history.csv (training and validation loss, the monitored value, the
learning rate, the global gradient norm on a fixed training batch) and the stage lengths the
recipe and the time budget planned, each rule below looks for one classic problem and, when it
finds it, says what it saw (with the numbers) and what usually helps:

- "loss not decreasing": the training loss never fell meaningfully below its first epoch's.
- "divergence": the training loss rose far above its start or stopped being finite, or the
  gradient norm exploded.
- "overfitting gap": training loss well below validation loss, validation loss rising from its
  best while the training loss still falls.
- "validation plateau": the monitored validation value did not improve in the last epochs.
- "stopped by early stopping at epoch N", "cut by the time budget": a stage ran fewer epochs
  than the recipe planned, and why.

Every report (summary.md and metrics.json) carries the findings; thresholds are the constants
below. A finding is a plain dict (`rule`, `name`, `stage`, `detail`, `advice`), ready for JSON.
"""

from __future__ import annotations

import math

from dlkeras import config
from dlkeras.runs import RunDir, read_history

# Fewer epochs than this say too little about a trend (one noisy epoch decides it).
MIN_EPOCHS = 3
# A training loss whose best later epoch is less than 2% below the first epoch's did not learn:
# epoch-to-epoch noise of a flat curve is about that size, a stage that learns falls further.
LOSS_DROP_MIN = 0.02
# A loss this small has nothing left to fall: the stage started from fitted weights.
NEGLIGIBLE_LOSS = 1e-3
# Training loss at twice its first epoch's: the steps overshoot (noise stays far below this).
DIVERGENCE_FACTOR = 2.0
# The gradient norm on the same batch grown tenfold over the stage's first epoch: an order of
# magnitude is far beyond the drift of healthy training, the usual sign of exploding gradients.
GRADIENT_EXPLOSION_FACTOR = 10.0
# Validation loss at least 1.5x the training loss: a gap well beyond the usual small excess of
# validation over training loss (the training loss of an epoch even includes dropout).
OVERFIT_GAP_RATIO = 1.5
# Validation loss 10% above its best at the last epoch: a rise, not the noise of a small
# validation split.
OVERFIT_VAL_RISE = 0.10
# The monitored validation value not improved in this many epochs: a plateau (keras' default
# early-stopping patiences are of this size).
PLATEAU_EPOCHS = 5
# An improvement smaller than 0.1% (relative) of the best value counts as none.
PLATEAU_MIN_DELTA = 1e-3

ADVICE = {
    "loss_not_decreasing": "Check that inputs and labels line up and that the loss suits the "
                           "outputs, make sure the model can overfit one small batch, then try "
                           "a learning rate 3-10x higher or lower (train.learning_rate).",
    "divergence": "Lower the learning rate (train.learning_rate, 3-10x), clip the gradient norm "
                  "(train.clipnorm=1.0) or warm up for longer (train.warmup_fraction).",
    "overfitting_gap": "The model memorises the training split: get more data, augment it, "
                       "regularise (model.dropout, train.weight_decay, a smaller model) or stop "
                       "earlier (callbacks.early_stopping_patience).",
    "validation_plateau": "More epochs at this learning rate do not help: lower the rate when "
                          "validation stalls (train.schedule='plateau'), train fewer epochs, or "
                          "change the model or the data.",
    "early_stopping": "The weights of the best epoch were restored. If it stopped within the "
                      "first few epochs, raise callbacks.early_stopping_patience or lower the "
                      "learning rate.",
    "time_budget": "Raise train.time_budget_minutes (or set it to 0) to train the planned epochs.",
}


def diagnose_run(run_dir: RunDir, recipe: config.Recipe) -> list[dict]:
    """The findings of a run's history.csv, judged with the recipe's stage plan and monitor."""
    return diagnose(
        read_history(run_dir.history_csv),
        monitor=recipe.callbacks.monitor,
        planned_epochs={stage.name: stage.epochs for stage in config.stage_plan(recipe.train)},
        patience=recipe.callbacks.early_stopping_patience,
        budget_plans=run_dir.stage_plans(),
        time_budget=recipe.train.time_budget_minutes > 0,
    )


def diagnose(rows: list[dict], monitor: str = "val_loss", planned_epochs: dict | None = None,
             patience: int = 0, budget_plans: dict | None = None,
             time_budget: bool = False) -> list[dict]:
    """Findings for each stage of a history, in stage order.

    Args:
        rows: history.csv rows (`runs.read_history`): stage, epoch and one column per log.
        monitor: the recipe's `callbacks.monitor` (a training metric's validation twin is
            judged when it names a training one).
        planned_epochs: epochs per stage in the recipe (`config.stage_plan`); None: unknown.
        patience: `callbacks.early_stopping_patience` (0: no early stopping).
        budget_plans: the run's `budget.json` (`RunDir.stage_plans`): each stage's length as
            planned under the time budget.
        time_budget: the recipe set `train.time_budget_minutes`.
    """
    stages = _by_stage(rows)
    planned_epochs, budget_plans = planned_epochs or {}, budget_plans or {}
    findings = []
    for stage in dict.fromkeys([*planned_epochs, *stages]):
        epochs = stages.get(stage, [])
        findings += _length_findings(stage, epochs, monitor, planned_epochs.get(stage),
                                     patience, budget_plans.get(stage), time_budget)
        if not epochs:
            continue
        found = [f for f in (_divergence(stage, epochs), _loss_not_decreasing(stage, epochs),
                             _overfitting_gap(stage, epochs)) if f]
        if found and found[0]["rule"] == "divergence":
            found = [f for f in found if f["rule"] != "loss_not_decreasing"]  # says it already
        stopped = any(f["rule"] == "early_stopping" and f["stage"] == stage for f in findings)
        if not stopped and not any(f["rule"] == "overfitting_gap" for f in found):
            found.append(_validation_plateau(stage, epochs, monitor))  # else explained above
        findings += [f for f in found if f]
    return findings


def render(findings: list[dict]) -> str:
    """The "## Diagnoses" markdown section of summary.md: one bullet per finding."""
    lines = ["", "## Diagnoses", ""]
    if not findings:
        lines.append("No problem found in the training curves (loss, validation, gradient norm).")
    for f in findings:
        lines.append(f"- **{f['name']}** (stage {f['stage']!r}): {f['detail']} {f['advice']}")
    return "\n".join(lines) + "\n"


# === Rules ===


def _finding(rule: str, stage: str, detail: str, name: str = "") -> dict:
    return {"rule": rule, "name": name or rule.replace("_", " "), "stage": stage,
            "detail": detail, "advice": ADVICE[rule]}


def _divergence(stage: str, epochs: list[dict]) -> dict | None:
    losses = _column(epochs, "loss")
    norms = _column(epochs, "gradient_norm")
    reasons = []
    broken = next((e for e, v in zip(epochs, losses) if v is not None and not math.isfinite(v)), None)
    if broken:
        reasons.append(f"the training loss became {broken['loss']} at epoch {broken['epoch']}")
    elif len(losses) >= 2 and _finite(losses):
        worst = max(range(1, len(losses)), key=lambda i: losses[i])
        if losses[0] > 0 and losses[worst] > DIVERGENCE_FACTOR * losses[0]:
            reasons.append(f"the training loss rose from {losses[0]:.4g} (epoch {epochs[0]['epoch']}) "
                           f"to {losses[worst]:.4g} (epoch {epochs[worst]['epoch']}), "
                           f"{losses[worst] / losses[0]:.1f}x its start{_rate(epochs[worst])}")
    if len(norms) >= 2 and _finite(norms[:1]) and all(v is not None for v in norms):
        bad = next((i for i, v in enumerate(norms) if not math.isfinite(v)), None)
        if bad is not None:
            reasons.append(f"the gradient norm became {norms[bad]} at epoch {epochs[bad]['epoch']}")
        elif norms[0] > 0:
            worst = max(range(1, len(norms)), key=lambda i: norms[i])
            if norms[worst] > GRADIENT_EXPLOSION_FACTOR * norms[0]:
                reasons.append(f"the gradient norm on a fixed training batch grew from "
                               f"{norms[0]:.4g} (epoch {epochs[0]['epoch']}) to {norms[worst]:.4g} "
                               f"(epoch {epochs[worst]['epoch']}), {norms[worst] / norms[0]:.0f}x")
    if not reasons:
        return None
    text = "; ".join(reasons)
    return _finding("divergence", stage, text[0].upper() + text[1:] + ".")


def _loss_not_decreasing(stage: str, epochs: list[dict]) -> dict | None:
    losses = _column(epochs, "loss")
    if len(losses) < MIN_EPOCHS or not _finite(losses) or losses[0] <= NEGLIGIBLE_LOSS:
        return None
    best = min(losses[1:])
    drop = (losses[0] - best) / losses[0]
    if drop >= LOSS_DROP_MIN:
        return None
    return _finding("loss_not_decreasing", stage,
                    f"The training loss started at {losses[0]:.4g} (epoch {epochs[0]['epoch']}) "
                    f"and its best later epoch reached {best:.4g} in {len(losses)} epochs "
                    f"({-drop:+.1%}; a fall of {LOSS_DROP_MIN:.0%} counts as learning)"
                    f"{_rate(epochs[0])}.")


def _overfitting_gap(stage: str, epochs: list[dict]) -> dict | None:
    losses, validation = _column(epochs, "loss"), _column(epochs, "val_loss")
    if len(epochs) < MIN_EPOCHS or not _finite(losses) or not _finite(validation):
        return None
    best = min(range(len(validation)), key=lambda i: validation[i])
    last = len(epochs) - 1
    rising = validation[last] >= validation[best] * (1 + OVERFIT_VAL_RISE) > 0
    if not (rising and losses[last] < losses[best]
            and validation[last] >= OVERFIT_GAP_RATIO * losses[last]):
        return None
    return _finding("overfitting_gap", stage,
                    f"At epoch {epochs[last]['epoch']} the training loss was {losses[last]:.4g} "
                    f"and the validation loss {validation[last]:.4g} "
                    f"({validation[last] / max(losses[last], 1e-12):.1f}x); the validation loss "
                    f"was best at epoch {epochs[best]['epoch']} ({validation[best]:.4g}) and has "
                    f"risen {validation[last] / validation[best] - 1:.0%} since, while the training "
                    f"loss fell from {losses[best]:.4g}.")


def _validation_plateau(stage: str, epochs: list[dict], monitor: str) -> dict | None:
    from dlkeras import tasks

    key = _validation_key(epochs, monitor)
    values = _column(epochs, key) if key else []
    if len(values) <= PLATEAU_EPOCHS or not _finite(values):
        return None
    sign = 1.0 if tasks.direction(key) == "min" else -1.0
    before = values[:-PLATEAU_EPOCHS]
    best = min(range(len(before)), key=lambda i: sign * before[i])
    needed = sign * before[best] - PLATEAU_MIN_DELTA * abs(before[best])
    if any(sign * v < needed for v in values[-PLATEAU_EPOCHS:]):
        return None
    return _finding("validation_plateau", stage,
                    f"{key} was best at epoch {epochs[best]['epoch']} ({before[best]:.4g}) and "
                    f"did not improve on it in the last {PLATEAU_EPOCHS} epochs "
                    f"({epochs[-PLATEAU_EPOCHS]['epoch']}-{epochs[-1]['epoch']}).")


def _length_findings(stage: str, epochs: list[dict], monitor: str, planned: int | None,
                     patience: int, budget_plan: dict | None, time_budget: bool) -> list[dict]:
    """Why a stage ran fewer epochs than the recipe planned: time budget or early stopping."""
    findings = []
    if budget_plan is not None and planned is not None and (
            budget_plan["epochs"] < planned or budget_plan.get("steps_per_epoch")):
        allowed = ("none" if budget_plan["epochs"] == 0 else
                   f"{budget_plan['steps_per_epoch']} steps of one epoch"
                   if budget_plan.get("steps_per_epoch") else f"{budget_plan['epochs']} epoch(s)")
        findings.append(_finding("time_budget", stage,
                                 f"The recipe planned {planned} epoch(s); the time budget allowed "
                                 f"{allowed} ({budget_plan['reason']}).", "cut by the time budget"))
        planned = budget_plan["epochs"]
    if not epochs or planned is None or len(epochs) >= planned:
        return findings
    ran = int(epochs[-1]["epoch"])
    losses = _column(epochs, "loss")
    if losses and losses[-1] is not None and not math.isfinite(losses[-1]):
        return findings  # the loss broke: the divergence finding says so
    key = _validation_key(epochs, monitor)
    values = _column(epochs, key) if key else []
    if patience > 0 and values and _finite(values):
        from dlkeras import tasks

        sign = 1.0 if tasks.direction(key) == "min" else -1.0
        best = min(range(len(values)), key=lambda i: sign * values[i])
        if len(values) - 1 - best >= patience:
            findings.append(_finding(
                "early_stopping", stage,
                f"The stage planned {planned} epochs; {key} was best at epoch "
                f"{epochs[best]['epoch']} ({values[best]:.4g}) and did not improve in the "
                f"{patience} epochs after it.", f"stopped by early stopping at epoch {ran}"))
            return findings
    if time_budget:
        findings.append(_finding("time_budget", stage,
                                 f"The stage planned {planned} epochs; the time budget ran out "
                                 f"during epoch {ran}.", "cut by the time budget"))
    elif patience > 0:  # the monitored value is not in the history: trust the only cause left
        findings.append(_finding("early_stopping", stage,
                                 f"The stage planned {planned} epochs (patience {patience}).",
                                 f"stopped by early stopping at epoch {ran}"))
    return findings


# === History rows ===


def _by_stage(rows: list[dict]) -> dict[str, list[dict]]:
    """Rows grouped by stage (in the order stages first appear), each sorted by epoch."""
    stages: dict[str, list[dict]] = {}
    for row in rows:
        stages.setdefault(row["stage"], []).append(row)
    return {name: sorted(epochs, key=lambda r: int(r["epoch"])) for name, epochs in stages.items()}


def _column(epochs: list[dict], key: str) -> list[float | None]:
    """The column as floats ("nan" and "inf" included); [] when no row has it."""
    values = [float(r[key]) if r.get(key) not in (None, "") else None for r in epochs]
    return values if any(v is not None for v in values) else []


def _finite(values: list) -> bool:
    return bool(values) and all(v is not None and math.isfinite(v) for v in values)


def _validation_key(epochs: list[dict], monitor: str) -> str | None:
    """The validation column that judges a stage: the monitor's, else val_loss."""
    for key in (monitor if monitor.startswith("val_") else f"val_{monitor}", "val_loss"):
        if _column(epochs, key):
            return key
    return None


def _rate(row: dict) -> str:
    value = row.get("learning_rate")
    return f" at learning rate {float(value):.3g}" if value not in (None, "") else ""
