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


def tfidf_logistic_regression(balanced: bool, seed: int):
    """Word 1-2-grams and character 2-5-grams, TF-IDF weighted, into logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True),
    )
    classifier = LogisticRegression(
        max_iter=2000, C=5.0, class_weight="balanced" if balanced else None, random_state=seed
    )
    return make_pipeline(features, classifier)


BASELINES = {
    "logistic_regression": logistic_regression,
    "gradient_boosting": gradient_boosting,
    "tfidf_logistic_regression": tfidf_logistic_regression,
}
# Baselines that read the raw inputs (texts) rather than the model-ready features.
RAW_INPUT = {"tfidf_logistic_regression"}


def run_all(recipe, datasets) -> dict[str, np.ndarray]:
    """Fits each baseline in `recipe.evaluate.baselines` on train; returns test probabilities.

    Baselines see the same model-ready features the network sees and, when the recipe
    balances class weights, are balanced the same way.
    """
    train, test = datasets.splits["train"], datasets.splits["test"]
    balanced = recipe.train.class_weight == "balanced"
    results = {}
    for name in recipe.evaluate.baselines:
        if name not in BASELINES:
            raise ConfigError(
                f"evaluate.baselines names {name!r}; choose from {sorted(BASELINES)}"
            )
        model = BASELINES[name](balanced, recipe.train.seed)
        read = (lambda split: list(split.raw)) if name in RAW_INPUT else (lambda split: _flat(split.x))
        model.fit(read(train), train.y)
        probabilities = np.zeros((len(test.y), datasets.info.num_classes))
        probabilities[:, model.classes_] = model.predict_proba(read(test))
        results[name] = probabilities
    return results
