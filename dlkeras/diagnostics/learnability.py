"""Labels vs inputs: does a quick linear model find any relation between them?

The recipe's own classical baseline (or logistic regression on the features) is fit on a
sample of the training split and scored on validation by balanced accuracy, then compared
with the same predictions scored against shuffled validation labels. Labels that do not
belong to their inputs (rows shuffled, a bad join, the wrong label column) score no better
than shuffled ones. A network can still memorise one batch of such labels, so this check,
not the one-batch one, is what catches them.
"""

from __future__ import annotations

import numpy as np

from dlkeras.diagnostics import Result

MAX_TRAIN, MAX_VAL = 3000, 2000  # a sample keeps the check to seconds
SHUFFLES = 200  # shuffled-label scores for the null distribution
P_VALUE = 0.01  # a real relation must beat 99% of shuffled-label scores
MAX_WIDTH = 20_000  # wider raw features (photos) are too slow for a quick linear model


def check(recipe, datasets) -> Result:
    """The labels-vs-inputs verdict for a classification recipe; "skip" elsewhere."""
    from sklearn.metrics import balanced_accuracy_score

    from dlkeras.tasks import classification_baselines as baselines

    if datasets.info.task != "classification":
        return Result("labels vs inputs", "skip", "not a classification task: the report "
                      "compares the forecast with its baselines")
    name = next((n for n in recipe.evaluate.baselines if n in baselines.BASELINES),
                "logistic_regression")
    rng = np.random.default_rng(recipe.train.seed)
    train = _sample(datasets.splits["train"], MAX_TRAIN, rng, name in baselines.RAW_INPUT)
    val = _sample(datasets.splits["val"], MAX_VAL, rng, name in baselines.RAW_INPUT)
    if train is None or val is None:
        return Result("labels vs inputs", "skip", "inputs too large for a quick linear model "
                      "(images from files): the one-batch and gradient checks still run")
    if len(np.unique(train[1])) < 2:
        return Result("labels vs inputs", "fail", "the training sample holds one class only",
                      advice="check the label column and the class balance")
    model = baselines.BASELINES[name](False, recipe.train.seed)
    model.fit(*train)
    predicted = model.predict(val[0])
    score = balanced_accuracy_score(val[1], predicted)
    null = np.array([balanced_accuracy_score(rng.permutation(val[1]), predicted)
                     for _ in range(SHUFFLES)])
    p_value = float((1 + np.sum(null >= score)) / (1 + SHUFFLES))
    numbers = {"baseline": name, "balanced_accuracy": round(float(score), 4),
               "shuffled_labels_p95": round(float(np.percentile(null, 95)), 4),
               "p_value": round(p_value, 4), "chance": round(1 / datasets.info.num_classes, 4)}
    line = (f"{name} on {len(train[1])} training examples: balanced accuracy {score:.3f} on "
            f"validation vs {numbers['shuffled_labels_p95']:.3f} (95th percentile) with shuffled "
            "labels")
    if p_value <= P_VALUE:
        return Result("labels vs inputs", "pass", line, numbers=numbers)
    return Result("labels vs inputs", "fail", f"label/input mismatch: {line}",
                  advice="labels look unrelated to their inputs: check row order, joins and "
                  "data.label_column", numbers=numbers)


def _sample(split, limit: int, rng, raw: bool):
    """(inputs, labels) of at most `limit` examples; None when the inputs are too wide."""
    index = np.sort(rng.permutation(len(split.y))[:limit])
    if raw:
        return [str(split.raw[i]) for i in index], split.y[index]
    if split.x is None or isinstance(split.x, dict):
        return None
    x = np.asarray(split.x)
    if x.dtype.kind not in "fiub":
        return None
    x = x[index].reshape(len(index), -1).astype(np.float32)
    if x.shape[1] > MAX_WIDTH:
        return None
    return x, split.y[index]
