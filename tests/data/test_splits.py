import numpy as np

from dlkeras.data.splits import stratified_split


def test_split_is_disjoint_complete_and_stratified():
    labels = np.array(["a"] * 80 + ["b"] * 20)
    train, val, test = stratified_split(labels, 0.15, 0.15, seed=1)
    assert len(set(train) | set(val) | set(test)) == 100
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
    for part in (train, val, test):
        share = (labels[part] == "b").mean()
        assert abs(share - 0.2) < 0.05


def test_rare_classes_stay_in_training():
    labels = np.array(["common"] * 50 + ["single"] + ["pair"] * 2)
    train, val, test = stratified_split(labels, 0.2, 0.2, seed=0)
    assert "single" in labels[train]
    assert "pair" in labels[train]


def test_split_depends_on_seed_only():
    labels = np.arange(60) % 3
    first = stratified_split(labels, 0.2, 0.2, seed=3)
    again = stratified_split(labels, 0.2, 0.2, seed=3)
    other = stratified_split(labels, 0.2, 0.2, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[2], other[2])


def test_many_small_classes_still_fill_validation_and_test():
    labels = np.repeat(np.arange(55), 3)
    train, val, test = stratified_split(labels, 0.15, 0.15, seed=0)
    assert len(test) == round(len(labels) * 0.15) and len(val) == round(len(labels) * 0.15)
    assert set(labels[train]) == set(range(55))
