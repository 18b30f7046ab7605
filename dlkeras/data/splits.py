"""Stratified train/val/test splits that keep every class in training."""

from __future__ import annotations

import numpy as np

from dlkeras.errors import DataError


def stratified_split(
    labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Splits indices per class, so each split keeps the class proportions.

    Per-class shares are rounded so that the split totals match the fractions (largest
    remainders first): many small classes still fill the validation and test splits. A class
    too rare to give every split an example keeps it in training, so no class is missing
    from the label vocabulary.

    Returns:
        Sorted index arrays (train, val, test).
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataError(
            f"val_fraction={val_fraction} and test_fraction={test_fraction} must each be in "
            "[0, 1) and sum to less than 1"
        )
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    spare = counts - 1  # one example of every class stays in training
    n_test = _allocate(counts * test_fraction, spare, rng)
    n_val = _allocate(counts * val_fraction, spare - n_test, rng)
    parts = ([], [], [])
    for value, test_count, val_count in zip(classes, n_test, n_val):
        members = rng.permutation(np.flatnonzero(labels == value))
        parts[2].append(members[:test_count])
        parts[1].append(members[test_count : test_count + val_count])
        parts[0].append(members[test_count + val_count :])
    return tuple(np.sort(np.concatenate(p)).astype(np.int64) for p in parts)


def _allocate(shares: np.ndarray, limits: np.ndarray, rng) -> np.ndarray:
    """Integer counts near `shares` summing to round(sum(shares)), each within [0, limits]."""
    counts = np.minimum(np.floor(shares).astype(np.int64), limits)
    missing = int(round(shares.sum())) - int(counts.sum())
    remainders = shares - counts + rng.random(len(shares)) * 1e-6  # random tie-break
    for index in np.argsort(-remainders):
        if missing <= 0:
            break
        if counts[index] < limits[index]:
            counts[index] += 1
            missing -= 1
    return counts


def chronological_split(
    length: int, val_fraction: float, test_fraction: float
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Consecutive (start, stop) spans of an ordered series: oldest for train, newest for test.

    Returns:
        ((0, a), (a, b), (b, length)) with round(length * fraction) steps for val and test.
    """
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataError(
            f"val_fraction={val_fraction} and test_fraction={test_fraction} must each be in "
            "(0, 1) and sum to less than 1 for a time-ordered split"
        )
    test = int(round(length * test_fraction))
    val = int(round(length * val_fraction))
    train = length - val - test
    return (0, train), (train, train + val), (train + val, length)
