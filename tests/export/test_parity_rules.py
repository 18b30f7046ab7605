"""The parity gate's rules on constructed outputs: each threshold passes exactly at its value and
fails just past it.

Quantized formats: accuracy and macro-F1 may drop by at most 1 point, a forecast's MAE may grow
by at most 5%. Float formats: outputs within `parity.FLOAT_TOLERANCE` of the Keras outputs.
Every case checks the other metric stays within its limit, so the verdict is the tested rule's.
"""

import numpy as np
import pytest

from dlkeras.export import parity
from dlkeras.export.formats import FORMATS

QUANTIZED = [name for name, entry in FORMATS.items() if entry.quantized]
FLOAT = [name for name, entry in FORMATS.items() if not entry.quantized]

def confusion(positives: int, negatives: int, true_positives: int, true_negatives: int):
    """(truth, predicted probabilities) of two classes with the given counts (class 1 first)."""
    truth = np.r_[np.ones(positives, int), np.zeros(negatives, int)]
    predicted = np.r_[np.ones(true_positives, int), np.zeros(positives - true_positives, int),
                      np.zeros(true_negatives, int), np.ones(negatives - true_negatives, int)]
    probabilities = np.where(predicted[:, None] == np.arange(2), 0.8, 0.2)
    return truth, probabilities


def judge(format_name: str, task: str, reference_counts, artifact_counts):
    truth, reference = confusion(*reference_counts)
    artifact_truth, artifact = confusion(*artifact_counts)
    assert (truth == artifact_truth).all()
    check = parity.check(format_name, task, artifact, reference, truth)
    base = parity.task_metrics(task, reference, truth)
    return check, {name: base[name] - check["metrics"][name] for name in base}


# Among 1000 customers the reference answers "no" to every churner; the artifact also answers
# "yes" to 10 (or 11) loyal customers: accuracy drops by exactly 1 (1.1) points, macro-F1 by less.
CHURNERS = (100, 200, 250, 300)  # reference accuracy 0.90, 0.80, 0.75, 0.70


@pytest.mark.parametrize("format_name", QUANTIZED)
def test_an_accuracy_drop_of_exactly_one_point_passes(format_name):
    for churners in CHURNERS:
        loyal = 1000 - churners
        check, drops = judge(format_name, "classification", (churners, loyal, 0, loyal),
                             (churners, loyal, 0, loyal - 10))
        assert drops["macro_f1"] < 0.01, drops  # only accuracy decides
        assert check["passed"], (churners, drops)


@pytest.mark.parametrize("format_name", QUANTIZED)
@pytest.mark.parametrize("churners", CHURNERS)
def test_an_accuracy_drop_past_one_point_fails(format_name, churners):
    loyal = 1000 - churners
    check, drops = judge(format_name, "classification", (churners, loyal, 0, loyal),
                         (churners, loyal, 0, loyal - 11))
    assert drops["macro_f1"] < 0.01 and drops["accuracy"] == pytest.approx(0.011), drops
    assert not check["passed"]


@pytest.mark.parametrize("format_name", QUANTIZED)
def test_a_macro_f1_drop_of_exactly_one_point_passes(format_name):
    # 50/50 classes, 76 answers right either way, the artifact's errors spread unevenly:
    # macro-F1 0.76 -> 0.75
    check, drops = judge(format_name, "classification", (50, 50, 38, 38), (50, 50, 28, 48))
    assert drops["accuracy"] == 0 and drops["macro_f1"] == pytest.approx(0.01), drops
    assert check["passed"], drops


@pytest.mark.parametrize("format_name", QUANTIZED)
def test_a_macro_f1_drop_past_one_point_fails(format_name):
    # 30/70 classes, 88 answers right either way: macro-F1 drops by 1.0044 points
    check, drops = judge(format_name, "classification", (30, 70, 30, 58), (30, 70, 25, 63))
    assert drops["accuracy"] == 0 and 0.01 < drops["macro_f1"] < 0.0101, drops
    assert not check["passed"]


@pytest.mark.parametrize("format_name", QUANTIZED)
def test_better_or_disagreeing_quantized_outputs_pass_on_metrics(format_name):
    truth, reference = confusion(50, 50, 30, 30)
    _, better = confusion(50, 50, 40, 40)
    check = parity.check(format_name, "classification", better, reference, truth)
    assert check["passed"] and check["top1_agreement"] < 1  # agreement is reported, not gated


def forecasts(mae: float):
    """(targets, forecasts) of 4 windows x 7 days whose mean absolute error is `mae`."""
    targets = np.linspace(-1.0, 2.0, 28).reshape(4, 7)
    signs = np.where(np.arange(28).reshape(4, 7) % 2, 1.0, -1.0)
    return targets, targets + signs * mae


MAE_SCALES = (0.2, 0.5, 0.8, 1.0, 2.0)  # reference MAE (scaled units)


@pytest.mark.parametrize("format_name", QUANTIZED)
def test_an_mae_exactly_five_percent_higher_passes(format_name):
    for mae in MAE_SCALES:
        targets, reference = forecasts(mae)
        check = parity.check(format_name, "forecast", forecasts(mae * 1.05)[1], reference, targets)
        assert check["rule"] == "MAE increase <= 5%"
        assert check["passed"], (mae, check["metrics"])


@pytest.mark.parametrize("format_name", QUANTIZED)
@pytest.mark.parametrize("mae", MAE_SCALES)
def test_an_mae_past_five_percent_higher_fails(format_name, mae):
    targets, reference = forecasts(mae)
    check = parity.check(format_name, "forecast", forecasts(mae * 1.0501)[1], reference, targets)
    assert check["metrics"]["mae"] == pytest.approx(mae * 1.0501)
    assert not check["passed"]


@pytest.mark.parametrize("format_name", QUANTIZED)
def test_a_lower_mae_passes(format_name):
    targets, reference = forecasts(0.8)
    assert parity.check(format_name, "forecast", forecasts(0.6)[1], reference, targets)["passed"]


@pytest.mark.parametrize("format_name", FLOAT)
@pytest.mark.parametrize("difference, passes", [
    pytest.param(parity.FLOAT_TOLERANCE, True, id="at-the-tolerance"),
    pytest.param(np.nextafter(parity.FLOAT_TOLERANCE, 1.0), False, id="one-ulp-past"),
])
def test_float_outputs_within_the_tolerance(format_name, difference, passes):
    targets, reference = forecasts(0.0)
    reference = np.zeros_like(reference)  # outputs differ by exactly `difference`, no rounding
    artifact = reference.copy()
    artifact[1, 3] = difference
    check = parity.check(format_name, "forecast", artifact, reference, targets)
    assert check["max_abs_difference"] == difference
    assert check["passed"] is passes, check
