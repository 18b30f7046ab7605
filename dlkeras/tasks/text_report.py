"""Text-specific evaluation extras: the test examples the model got wrong most confidently, and
the map of the test embeddings (`tasks.embedding_map`, each text beside its point in TensorBoard's
projector)."""

from __future__ import annotations

import numpy as np

from dlkeras.io import write_text_atomic
from dlkeras.runs import RunDir
from dlkeras.tasks import embedding_map

SHOWN = 25


def extra_report(model, datasets, probabilities: np.ndarray, run_dir: RunDir,
                 embeddings=None) -> dict:
    """Writes report/confidently_wrong.md and the embedding map; returns the rows and the map's
    files for metrics.json."""
    test = datasets.splits["test"]
    names = datasets.info.class_names
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != test.y)
    order = wrong[np.argsort(-probabilities[wrong, predicted[wrong]])][:SHOWN]
    rows = [
        {
            "text": str(test.raw[i]),
            "true": names[test.y[i]],
            "predicted": names[predicted[i]],
            "confidence": round(float(probabilities[i, predicted[i]]), 4),
        }
        for i in order
    ]
    lines = [
        f"# Most confidently wrong test examples ({len(wrong)} wrong of {len(test.y)})",
        "",
        "| confidence | predicted | true | text |",
        "|---|---|---|---|",
    ]
    for row in rows:
        text = " ".join(row["text"].split()).replace("|", "\\|")
        lines.append(f"| {row['confidence']:.3f} | {row['predicted']} | {row['true']} | {text} |")
    write_text_atomic(run_dir.report_dir / "confidently_wrong.md", "\n".join(lines) + "\n")
    written = embedding_map.write(model, datasets, probabilities, run_dir,
                                  columns={"text": test.raw}, embeddings=embeddings)
    return {"confidently_wrong": rows, **written}
