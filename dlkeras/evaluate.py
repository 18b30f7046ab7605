"""Classification report on the test split: metrics.json, per-class report, confusion matrix and curves (PNG).

Metrics are computed with scikit-learn from the model's predicted probabilities, and the
recipe's classical baselines are scored on the very same split beside them.
"""

from __future__ import annotations

import importlib
import json
import sys

import numpy as np

from dlkeras import baselines
from dlkeras.runs import (
    RunDir,
    read_history,
    save_figure_atomic,
    write_json_atomic,
    write_text_atomic,
)


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray, class_names) -> dict:
    """Accuracy, macro-F1, ROC-AUC, log loss, per-class precision/recall/F1 and the confusion."""
    from sklearn import metrics

    labels = list(range(len(class_names)))
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    predicted = probabilities.argmax(axis=1)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, predicted, labels=labels, zero_division=0
    )
    result = {
        "examples": int(len(y_true)),
        "accuracy": float(metrics.accuracy_score(y_true, predicted)),
        "macro_f1": float(f1.mean()),
        "log_loss": float(metrics.log_loss(y_true, probabilities, labels=labels)),
    }
    present = np.unique(y_true)
    if len(class_names) == 2 and len(present) == 2:
        result["roc_auc"] = float(metrics.roc_auc_score(y_true, probabilities[:, 1]))
        result["f1"] = float(f1[1])
    elif len(present) == len(class_names) > 2:
        result["roc_auc"] = float(
            metrics.roc_auc_score(y_true, probabilities, multi_class="ovr", labels=labels)
        )
    result["per_class"] = {
        str(name): {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }
    result["confusion_matrix"] = metrics.confusion_matrix(y_true, predicted, labels=labels).tolist()
    return result


# Reports that only make sense for one kind of input (keyed by `data.kind`): a module with
# `extra_report(model, datasets, probabilities, run_dir) -> dict`, e.g. misclassified images.
EXTRA_REPORTS: dict[str, str] = {
    "image_folder": "dlkeras.image_report",
    "text": "dlkeras.text_report",
}


def report(model, datasets, recipe, run_dir: RunDir, seconds: dict[str, float]) -> dict:
    """Scores the model and the baselines on the test split and writes the report files."""
    info = datasets.info
    test = datasets.splits["test"]
    probabilities = np.asarray(model.predict(datasets.test, verbose=0), dtype=np.float64)
    report = {
        "recipe": recipe.name,
        "model": classification_metrics(test.y, probabilities, info.class_names),
        "baselines": baselines.run_all(recipe, datasets),
        "split_sizes": info.split_sizes,
        "class_names": list(info.class_names),
        "train_seconds": seconds,
        "notes": info.notes,
    }
    if recipe.data.kind in EXTRA_REPORTS and recipe.evaluate.plots:
        module = importlib.import_module(EXTRA_REPORTS[recipe.data.kind])
        report["extra"] = module.extra_report(model, datasets, probabilities, run_dir)
    write_json_atomic(run_dir.metrics_json, report)
    write_json_atomic(
        run_dir.report_dir / "confusion_matrix.json",
        {"labels": list(info.class_names), "matrix": report["model"]["confusion_matrix"]},
    )
    if recipe.evaluate.plots:
        plot_confusion(report["model"]["confusion_matrix"], info.class_names,
                       run_dir.report_dir / "confusion_matrix.png")
        plot_history(read_history(run_dir.history_csv), run_dir.report_dir / "curves.png")
    report["summary"] = summary_table(report)
    write_text_atomic(run_dir.report_dir / "summary.md", report["summary"])
    return report


HEADLINE = ("accuracy", "macro_f1", "f1", "roc_auc", "log_loss")


def summary_table(report: dict) -> str:
    """A markdown table of the model's headline metrics next to each baseline's."""
    rows = {"dlkeras model": report["model"], **report["baselines"]}
    keys = [k for k in HEADLINE if any(k in r for r in rows.values())]
    lines = [
        f"Test split of {report['recipe']} ({report['model']['examples']} examples)",
        "",
        "| model | " + " | ".join(keys) + " |",
        "|---|" + "---|" * len(keys),
    ]
    for name, metrics in rows.items():
        cells = [f"{metrics[k]:.4f}" if k in metrics else "" for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# === Plots ===


def _pyplot():
    import matplotlib

    if "ipykernel" not in sys.modules:  # keep inline plots working in notebooks
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(matrix, class_names, path) -> None:
    """Confusion matrix as a PNG, counts written in each cell (rows: true, columns: predicted)."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    size = max(4.0, 0.45 * len(class_names) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(matrix, cmap="Blues")
    ticks = range(len(class_names))
    axes.set_xticks(ticks, [str(c) for c in class_names], rotation=45, ha="right")
    axes.set_yticks(ticks, [str(c) for c in class_names])
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if len(class_names) <= 30:
        threshold = matrix.max() / 2 if matrix.size else 0
        for (row, column), count in np.ndenumerate(matrix):
            colour = "white" if count > threshold else "black"
            axes.text(column, row, str(count), ha="center", va="center", color=colour, fontsize=8)
    axes.set_title("Confusion matrix (test)")
    figure.tight_layout()
    save_figure_atomic(figure, path)


def plot_history(rows: list[dict], path) -> None:
    """Loss and the first other metric per epoch, train vs validation, stages marked."""
    if not rows:
        return
    plt = _pyplot()
    metric = next((k for k in rows[0] if k.startswith("val_") and k != "val_loss"), None)
    names = ["loss"] + ([metric[4:]] if metric else [])
    figure, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), squeeze=False)
    steps = np.arange(1, len(rows) + 1)
    for axis, name in zip(axes[0], names):
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            values = [float(r[key]) if r.get(key) not in (None, "") else np.nan for r in rows]
            axis.plot(steps, values, marker="o", markersize=3, label=label)
        for index in range(1, len(rows)):
            if rows[index]["stage"] != rows[index - 1]["stage"]:
                axis.axvline(index + 0.5, color="grey", linestyle="--", linewidth=1)
        axis.set_xlabel("epoch (all stages)")
        axis.set_title(name)
        axis.legend()
    figure.tight_layout()
    save_figure_atomic(figure, path)


def load_metrics(run_dir: RunDir) -> dict:
    return json.loads(run_dir.metrics_json.read_text())
