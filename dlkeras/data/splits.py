"""Stratified train/val/test splits that keep every class in training."""

from __future__ import annotations

import numpy as np

from dlkeras.errors import DataError


def stratified_split(
    labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Splits indices per class, so each split keeps the class proportions.

    A class too rare to give every split an example keeps its first example in training, so
    a rare class is never missing from the label vocabulary.

    Returns:
        Sorted index arrays (train, val, test).
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataError(
            f"val_fraction={val_fraction} and test_fraction={test_fraction} must each be in "
            "[0, 1) and sum to less than 1"
        )
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        n_test = int(round(len(members) * test_fraction))
        n_val = int(round(len(members) * val_fraction))
        while n_test + n_val >= len(members) and n_test + n_val > 0:
            n_test, n_val = (n_test - 1, n_val) if n_test >= n_val else (n_test, n_val - 1)
        parts[2].append(members[:n_test])
        parts[1].append(members[n_test : n_test + n_val])
        parts[0].append(members[n_test + n_val :])
    return tuple(np.sort(np.concatenate(p)).astype(np.int64) for p in parts)


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
