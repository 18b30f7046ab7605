"""Plots every task's report shares: training curves and the confusion matrix (PNG)."""

from __future__ import annotations

import numpy as np

from dlkeras.io import pyplot, save_figure_atomic


def plot_confusion(matrix, class_names, path) -> None:
    """Confusion matrix as a PNG, counts written in each cell (rows: true, columns: predicted)."""
    plt = pyplot()
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
    plt = pyplot()
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
