"""The classification task: loss and metrics, the test report, raw-input predictions, parity.

The report (metrics.json, per-class report, confusion matrix and curves as PNG) is computed
with scikit-learn from the model's predicted probabilities, and the recipe's classical
baselines are scored on the very same split beside them; report/index.html shows it all on
one page.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np

from dlkeras.errors import DataError
from dlkeras.io import write_json_atomic, write_text_atomic
from dlkeras.runs import RunDir, read_history
from dlkeras.tasks import classification_baselines, diagnoses, embedding_map, html_report
from dlkeras.tasks.plots import plot_confusion, plot_history

LOSSES = ("auto", "crossentropy")
DIRECTIONS = {"loss": "min", "accuracy": "max", "macro_f1": "max", "f1": "max", "roc_auc": "max",
              "log_loss": "min"}
QUANTIZED_MAX_DROP = 0.01  # 1 point of accuracy and macro-F1 for quantized exports


def build_loss(recipe):
    """Cross-entropy over one-hot labels, with the recipe's label smoothing."""
    import keras

    return keras.losses.CategoricalCrossentropy(label_smoothing=recipe.train.label_smoothing)


def build_metrics() -> list:
    import keras

    return [keras.metrics.CategoricalAccuracy(name="accuracy")]


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
# `extra_report(model, datasets, probabilities, run_dir, embeddings=None) -> dict`, e.g.
# misclassified images (`embeddings`: the test embeddings, when the predictions gave them).
EXTRA_REPORTS: dict[str, str] = {
    "image_folder": "dlkeras.tasks.image_report",
    "images": "dlkeras.tasks.embedding_map",
    "text": "dlkeras.tasks.text_report",
}


def report(model, datasets, recipe, run_dir: RunDir, training: dict) -> dict:
    """Scores the model and the baselines on the test split and writes the report files."""
    info = datasets.info
    test = datasets.splits["test"]
    probabilities, embeddings = embedding_map.test_outputs(model, datasets.test)
    report = {
        "recipe": recipe.name,
        "model": classification_metrics(test.y, probabilities, info.class_names),
        "baselines": {
            name: {k: v for k, v in classification_metrics(test.y, scores, info.class_names).items()
                   if k not in ("per_class", "confusion_matrix")}
            for name, scores in baseline_probabilities(recipe, datasets, run_dir, training).items()
        },
        "split_sizes": info.split_sizes,
        "class_names": list(info.class_names),
        **training,
        "diagnoses": diagnoses.diagnose_run(run_dir, recipe),
        "notes": info.notes,
    }
    if recipe.data.kind in EXTRA_REPORTS and recipe.evaluate.plots:
        module = importlib.import_module(EXTRA_REPORTS[recipe.data.kind])
        report["extra"] = module.extra_report(model, datasets, probabilities, run_dir,
                                              embeddings=embeddings)
    write_json_atomic(run_dir.metrics_json, report)
    write_json_atomic(
        run_dir.report_dir / "confusion_matrix.json",
        {"labels": list(info.class_names), "matrix": report["model"]["confusion_matrix"]},
    )
    if recipe.evaluate.plots:
        plot_confusion(report["model"]["confusion_matrix"], info.class_names,
                       run_dir.report_dir / "confusion_matrix.png")
        plot_history(read_history(run_dir.history_csv), run_dir.report_dir / "curves.png")
    report["summary"] = summary_table(report) + diagnoses.render(report["diagnoses"])
    write_text_atomic(run_dir.report_dir / "summary.md", report["summary"])
    html_report.write_html_report(run_dir)  # last: it reads every file written above
    return report


def baseline_probabilities(recipe, datasets, run_dir: RunDir, training: dict) -> dict[str, np.ndarray]:
    """Test probabilities of the recipe's classical baselines and, for a pretrained backbone,
    of the linear probe on its frozen features (with the settings validation chose)."""
    scores = classification_baselines.run_all(recipe, datasets)
    probe = training.get("linear_probe")
    if probe and run_dir.backbone_features.is_file():
        from dlkeras.engine import feature_cache
        from dlkeras.tasks import linear_probe

        features = feature_cache.load(run_dir.backbone_features)
        fitted = linear_probe.refit(features, datasets.info.num_classes, probe["c"],
                                    probe["class_weight"], recipe.train.seed)
        scores["linear_probe"] = fitted.probabilities(features.x["test"])
    return scores


def verdict(report: dict) -> str:
    """One sentence: did the network beat each baseline on accuracy and on macro-F1?"""
    model, baselines = report["model"], report["baselines"]
    if not baselines:
        return "The network was not compared with any baseline."
    parts = []
    for name, metrics in baselines.items():
        won = [k for k in ("accuracy", "macro_f1") if model[k] > metrics[k]]
        if len(won) == 2:
            parts.append(f"beat {name} on accuracy and macro-F1")
        elif won:
            lost = "macro-F1" if won == ["accuracy"] else "accuracy"
            parts.append(f"beat {name} on {won[0].replace('macro_f1', 'macro-F1')} but NOT on {lost}")
        else:
            parts.append(f"did NOT beat {name}")
    return "The network " + "; it ".join(parts) + " (test split)."


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
    lines += ["", verdict(report)]
    kept = report.get("kept_stage")
    if kept == "probe":
        lines.append("The model is the pretrained backbone with the linear probe as its head: it "
                     "scored best on validation, so no trained stage was kept (hence the tie).")
    elif kept:
        lines.append(f"Kept the weights of stage {kept!r}, the best on validation.")
    return "\n".join(lines) + "\n"


# === Export parity ===


def parity_metrics(outputs: np.ndarray, truth: np.ndarray) -> dict:
    """Accuracy and macro-F1 of output probabilities against integer labels."""
    from sklearn.metrics import f1_score

    predicted = outputs.argmax(axis=1)
    return {"accuracy": float((predicted == truth).mean()),
            "macro_f1": float(f1_score(truth, predicted, average="macro"))}


def quantized_rule(reference: dict, artifact: dict) -> tuple[str, bool]:
    """A quantized artifact may lose at most 1 point of accuracy and of macro-F1.

    A drop of exactly 1 point passes: drops are rounded to 9 decimals before the `<=`, so the
    rounding error of the subtraction (0.90 - 0.89 is 0.010000000000000009) cannot fail it.
    """
    drops = [round(reference[k] - artifact[k], 9) for k in reference]
    return (f"accuracy and macro-F1 drop <= {QUANTIZED_MAX_DROP:g}",
            all(drop <= QUANTIZED_MAX_DROP for drop in drops))


# === Predictions from raw inputs ===


def raw_inputs(model, request) -> tuple[list[str], object]:
    """(display names, raw inputs) from the request's arguments or --input, by input kind.

    Args:
        request: `inputs` (texts or image paths), `input` (a file or None), `column`.
    """
    kind = model.preprocessing["kind"]
    if request.input is not None:
        from dlkeras.data import sources

        if kind == "text" and request.input.suffix.lower() in (".txt", ""):
            try:
                lines = request.input.read_text(encoding="utf-8").splitlines()
            except UnicodeDecodeError:
                raise DataError(sources.not_utf8(request.input)) from None
            texts = [line for line in lines if line.strip()]
            return texts, texts
        frame = sources.load_table(request.input)
        if kind == "text":
            if request.column not in frame.columns:
                raise DataError(f"{request.input}: no column {request.column!r}; pass --column "
                                f"NAME (the file has {list(frame.columns)})")
            texts = frame[request.column].astype(str).tolist()
            return texts, texts
        if kind == "tabular":
            return [f"row {i + 2}" for i in range(len(frame))], frame
        paths = frame.iloc[:, 0].astype(str).tolist()
        return paths, paths
    if not request.inputs:
        raise DataError("give inputs to classify: texts or image files as arguments, or --input FILE")
    if kind == "tabular":
        raise DataError("table models read rows from a file: pass --input rows.csv")
    return list(request.inputs), list(request.inputs)


def named_inputs(model, inputs) -> tuple[list[str], object]:
    """(display names, raw inputs) from Python objects, by input kind (the API's `predict`).

    Args:
        inputs: texts or image files (one string is one input); image arrays (N, H, W[, C]);
            table rows as a DataFrame or a list of dicts of column: value.

    Raises:
        DataError: no inputs, or inputs of a shape this kind of model does not read.
    """
    import pandas as pd

    kind = model.preprocessing["kind"]
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    if kind == "tabular":
        if not isinstance(inputs, pd.DataFrame):
            rows = list(inputs) if isinstance(inputs, (list, tuple)) else None
            if not rows or not all(isinstance(row, dict) for row in rows):
                raise DataError("table models read rows: pass a DataFrame, or a list of dicts of "
                                "column: value (one per row)")
            inputs = pd.DataFrame(rows)
        if inputs.empty:
            raise DataError("the table holds no rows; pass at least one row to classify")
        return [f"row {index}" for index in inputs.index], inputs.reset_index(drop=True)
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind in "fiu":  # image arrays
        return [f"image {index}" for index in range(len(inputs))], inputs
    raw = [str(item) if isinstance(item, Path) else item for item in inputs]
    if not raw or not all(isinstance(item, str) for item in raw):
        raise DataError("give inputs to classify: a list of texts or image files (or image "
                        "arrays for image models)")
    return list(raw), raw


def classify(model, raw) -> np.ndarray:
    """Class probabilities (N, classes) of a loaded model for raw inputs, 32 at a time."""
    from dlkeras.data.raw import RawInputs, pick

    convert = RawInputs(model.preprocessing, model.folder)
    batches = []
    for start in range(0, len(raw), 32):
        chunk = pick(raw, slice(start, start + 32))
        batches.append(np.asarray(model.predict(convert(chunk)), dtype=np.float64))
    return np.concatenate(batches)


def predictions(model, inputs):
    """The predicted class per input, as a DataFrame: the predict command's CSV columns (input,
    label, probability), then the probability of every class."""
    import pandas as pd

    names, raw = named_inputs(model, inputs)
    probabilities = classify(model, raw)
    classes = model.preprocessing["class_names"]
    best = probabilities.argmax(axis=1)
    frame = pd.DataFrame({"input": names, "label": [classes[i] for i in best],
                          "probability": probabilities[np.arange(len(best)), best]})
    # concatenated, not merged by name: a class called "label" keeps its own column
    return pd.concat([frame, pd.DataFrame(probabilities, columns=list(classes))], axis=1)


def predict_raw(model, request) -> tuple[str, str]:
    """Top classes per raw input, batch by batch; returns (printed text, CSV).

    Args:
        model: a loaded model (`predict`, `preprocessing`, `folder`, `name`).
        request: `inputs`, `input`, `column` and `top` (classes shown per input).
    """
    names, raw = raw_inputs(model, request)
    probabilities = classify(model, raw)
    classes = model.preprocessing["class_names"]
    lines, rows = [f"{model.name}: {len(names)} input(s)"], ["input,label,probability"]
    for name, row in zip(names, probabilities):
        order = np.argsort(-row)[: max(1, request.top)]
        shown = ", ".join(f"{classes[i]} {row[i]:.3f}" for i in order)
        shown_name = name if len(name) <= 70 else "..." + name[-67:]
        lines.append(f"{classes[order[0]]:>14s}  {row[order[0]]:.3f}  {shown_name!r}  [{shown}]")
        rows.append(f"{json.dumps(name)},{classes[order[0]]},{row[order[0]]:.6f}")
    return "\n".join(lines), "\n".join(rows) + "\n"
