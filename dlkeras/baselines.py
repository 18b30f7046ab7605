"""Classical baselines scored on the same split as the network, so its gain is visible."""

from __future__ import annotations

import numpy as np

from dlkeras.errors import ConfigError


def _flat(x) -> np.ndarray:
    array = np.asarray(x, dtype=np.float32)
    return array.reshape(len(array), -1)


def logistic_regression(balanced: bool, seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(
        max_iter=2000, class_weight="balanced" if balanced else None, random_state=seed
    )


def gradient_boosting(balanced: bool, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        class_weight="balanced" if balanced else None, random_state=seed
    )


BASELINES = {
    "logistic_regression": logistic_regression,
    "gradient_boosting": gradient_boosting,
}


def run_all(recipe, datasets) -> dict[str, dict]:
    """Fits each baseline in `recipe.evaluate.baselines` on train and scores it on test.

    Baselines see the same model-ready features the network sees and, when the recipe
    balances class weights, are balanced the same way.
    """
    from dlkeras.evaluate import classification_metrics

    train, test = datasets.splits["train"], datasets.splits["test"]
    balanced = recipe.train.class_weight == "balanced"
    results = {}
    for name in recipe.evaluate.baselines:
        if name not in BASELINES:
            raise ConfigError(
                f"evaluate.baselines names {name!r}; choose from {sorted(BASELINES)}"
            )
        model = BASELINES[name](balanced, recipe.train.seed)
        model.fit(_flat(train.x), train.y)
        probabilities = np.zeros((len(test.y), datasets.info.num_classes))
        probabilities[:, model.classes_] = model.predict_proba(_flat(test.x))
        metrics = classification_metrics(test.y, probabilities, datasets.info.class_names)
        results[name] = {k: v for k, v in metrics.items() if k not in ("per_class", "confusion_matrix")}
    return results
