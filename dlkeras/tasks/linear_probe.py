"""The linear probe: logistic regression on the frozen pretrained backbone's features.

It serves twice. It is the baseline a transfer-learning recipe must beat (a user's first try
with a pretrained model), reported beside the network; and its solution is where the head
starts, so fine-tuning begins from the best linear classifier of the pretrained features
rather than from a random head (linear probing then fine-tuning, Kumar et al., 2022).

Its settings (the regularisation C, and class weights when `train.class_weight="auto"`) are
chosen on the validation split only, by macro-F1 and then accuracy. Its logits are then divided
by a temperature fit on validation log-loss (Guo et al., 2017). That changes no prediction, but
a probe that separates the training set (many classes, few examples each) is far more confident
there than it is right on new data; a head started from it has almost no training loss left, so
fine-tuning barely moves the encoder. Calibrated, the head starts with a loss that still teaches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

C_GRID = (0.01, 0.1, 1.0, 10.0)  # inverse L2 strength on centred, globally scaled features
MIN_SCALE = 1e-3
SEPARATES = 0.99  # training accuracy from which a probe counts as separating its training set


@dataclass
class Probe:
    """A fitted probe: centring and scaling, the classifier, and what validation chose."""

    mean: np.ndarray
    scale: np.ndarray
    classifier: object
    num_classes: int
    c: float
    class_weight: str
    validation: dict
    temperature: float = 1.0
    training_accuracy: float | None = None

    def separates_training(self) -> bool:
        """True when the probe classifies (almost) every training example right."""
        return self.training_accuracy is not None and self.training_accuracy >= SEPARATES

    def raw_logits(self, features: np.ndarray) -> np.ndarray:
        """(examples, training classes) uncalibrated logits; a binary probe's one logit belongs
        to the second class, the first gets 0 (as in `head_weights`)."""
        raw = np.asarray(self.classifier.decision_function((features - self.mean) / self.scale))
        return np.stack([np.zeros_like(raw), raw], axis=1) if raw.ndim == 1 else raw

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(examples, num_classes) probabilities; classes missing from training get 0."""
        from scipy.special import softmax

        scores = np.zeros((len(features), self.num_classes))
        scores[:, self.classifier.classes_] = softmax(self.raw_logits(features) / self.temperature, axis=1)
        return scores

    def head_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(kernel (width, classes), bias (classes,)) of a softmax Dense layer on raw features
        that computes exactly this probe (centring and scaling folded in)."""
        coef = np.asarray(self.classifier.coef_, dtype=np.float64) / self.temperature
        intercept = np.asarray(self.classifier.intercept_, dtype=np.float64) / self.temperature
        if coef.shape[0] == 1:  # binary: sklearn keeps one logit, softmax needs two
            coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.array([0.0, intercept[0]])
        kernel = np.zeros((len(self.mean), self.num_classes))
        bias = np.full(self.num_classes, -1e4)  # a class training never saw is never predicted
        kernel[:, self.classifier.classes_] = (coef / self.scale).T
        bias[self.classifier.classes_] = intercept - (coef * self.mean / self.scale).sum(axis=1)
        return kernel.astype(np.float32), bias.astype(np.float32)

    def describe(self, features: str = "frozen backbone features") -> str:
        metrics = self.validation
        return (f"linear probe on {features}: validation accuracy "
                f"{metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f} "
                f"(C={self.c:g}, class weights {self.class_weight}, temperature "
                f"{self.temperature:.2f}; training accuracy {self.training_accuracy:.4f})")


def score(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy and macro-F1 of probabilities against integer labels."""
    from sklearn.metrics import f1_score

    predicted = probabilities.argmax(axis=1)
    return {"accuracy": float((predicted == labels).mean()),
            "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0))}


def fit(features, num_classes: int, class_weight: str, seed: int,
        c_grid: tuple[float, ...] = C_GRID) -> Probe:
    """Fits a probe per setting on the training features and keeps the best on validation.

    Args:
        features: `feature_cache.Features` (x and integer y per split).
        class_weight: "none", "balanced", or "auto" (both tried, validation decides).
    """
    from sklearn.linear_model import LogisticRegression

    train_x, train_y = features.x["train"].astype(np.float64), features.y["train"]
    # One scale for all features, not one per feature: per-feature standardisation blows up
    # near-dead channels, and a head started from such a probe swings wildly as soon as
    # fine-tuning moves those channels. The floor keeps an untrained backbone's ~1e-13
    # features from being blown up as a whole.
    mean = train_x.mean(axis=0)
    scale = np.full_like(mean, max(float(train_x.std()), MIN_SCALE))
    weights = ("none", "balanced") if class_weight == "auto" else (class_weight,)
    best = None
    for weight in weights:
        for c in c_grid:
            classifier = LogisticRegression(C=c, max_iter=1000, random_state=seed,
                                            class_weight="balanced" if weight == "balanced" else None)
            classifier.fit((train_x - mean) / scale, train_y)
            probe = Probe(mean, scale, classifier, num_classes, c, weight, {})
            probe.validation = score(probe.probabilities(features.x["val"]), features.y["val"])
            rank = (probe.validation["macro_f1"], probe.validation["accuracy"])
            if best is None or rank > best[0]:
                best = (rank, probe)
    probe = best[1]
    probe.temperature = temperature(probe, features)
    probe.training_accuracy = float(probe.classifier.score((train_x - mean) / scale, train_y))
    return probe


def temperature(probe: Probe, features) -> float:
    """The temperature in [0.05, 100] that minimises the probe's validation log-loss.

    Validation examples of classes training never saw are left out: no temperature helps them.
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    known = np.isin(features.y["val"], probe.classifier.classes_)
    if not known.any():
        return 1.0
    raw = probe.raw_logits(features.x["val"][known].astype(np.float64))
    column = np.searchsorted(probe.classifier.classes_, features.y["val"][known])
    rows = np.arange(len(column))

    def log_loss(log_t: float) -> float:
        return float(-log_softmax(raw / np.exp(log_t), axis=1)[rows, column].mean())

    found = minimize_scalar(log_loss, bounds=(np.log(0.05), np.log(100.0)), method="bounded")
    return float(np.exp(found.x))


def refit(features, num_classes: int, c: float, class_weight: str, seed: int) -> Probe:
    """The probe with settings chosen earlier (the report's baseline), fit on training only."""
    return fit(features, num_classes, class_weight, seed, c_grid=(c,))
