"""report/index.html: a run's whole report on one self-contained page.

The page is read back from the files the task's report wrote (metrics.json, summary.md,
history.csv, the report's PNGs and markdown extras), so it never disagrees with them and can be
rebuilt for any finished run. Images are embedded as base64 data URIs and the CSS is inline:
the page opens from a file, offline, copied or mailed on its own, and needs no JavaScript.

Every piece of text from the data (class names, texts, file names) is escaped. The markdown
renderer knows what dlkeras writes (headings, paragraphs, "- " lists, pipe tables, **bold**,
`code`) and escapes each line before it adds any tag: the `markdown` package would pass raw
HTML inside a tweet through to the page.
"""

from __future__ import annotations

import base64
import html
import itertools
import json
import re
from pathlib import Path

from dlkeras.errors import RunError
from dlkeras.io import write_text_atomic
from dlkeras.runs import RunDir, read_history

# Report files shown after the metrics and the training curves, in this order, whichever the
# task wrote: PNGs as captioned figures, markdown rendered (it brings its own heading). Any
# other PNG in report/ follows, captioned with its file name.
REPORT_FILES = (
    ("confusion_matrix.png", "Confusion matrix (test)"),
    ("predictions.png", "Forecasts against actuals (test)"),
    ("residuals.png", "Residuals of the network (test)"),
    ("misclassified.png", "Misclassified test images"),
    ("gradcam.png", "Grad-CAM of the predicted class"),
    ("confidently_wrong.md", "Most confidently wrong test examples"),
    ("embeddings.png", "Map of the test embeddings"),
)
CURVES = ("curves.png", "Training curves (all stages)")

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d232a;
       background: #f6f7f9; margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 60px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #dbe2ea; }
h3 { font-size: 17px; margin: 20px 0 8px; }
.subtitle { color: #5b6875; margin: 0 0 10px; }
.wide { overflow-x: auto; }
table { border-collapse: collapse; margin: 10px 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d5dce3; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #eef2f6; }
tr:nth-child(even) td { background: #f8fafc; }
code { background: #eef2f6; padding: 1px 4px; border-radius: 3px; }
figure { margin: 12px 0; }
img { max-width: 100%; height: auto; border: 1px solid #e3e8ee; }
figcaption { color: #5b6875; font-size: 13px; }
details summary { cursor: pointer; color: #2b5f8e; }
li { margin: 4px 0; }
"""


def write_html_report(run_dir: RunDir | Path) -> Path:
    """Writes report/index.html of a run whose report is written; returns its path.

    Raises:
        RunError: the run has no metrics.json (its report was not written yet).
    """
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(Path(run_dir))
    if not run.metrics_json.is_file():
        raise RunError(f"{run.path} has no metrics.json: finish the run (python -m dlkeras.train "
                       "--resume RUN_DIR) before writing its HTML report")
    metrics = json.loads(run.metrics_json.read_text(encoding="utf-8"))
    report = run.report_dir
    sections = []
    if (report / "summary.md").is_file():
        sections.append(("Summary", markdown_html((report / "summary.md").read_text(encoding="utf-8"))))
    sections.append(("Test metrics", metrics_table(metrics)))
    if metrics["model"].get("per_class"):
        sections.append(("Per class (test)", per_class_table(metrics["model"]["per_class"])))
    training = training_html(run)
    if training:
        sections.append(("Training", training))
    known = {name for name, _ in (*REPORT_FILES, CURVES)}
    others = [(p.name, p.name) for p in sorted(report.glob("*.png"))
              if p.name not in known and not p.name.startswith(".")]  # "." : a write under way
    for name, caption in (*REPORT_FILES, *others):
        path = report / name
        if path.is_file() and name.endswith(".md"):
            sections.append(("", markdown_html(path.read_text(encoding="utf-8"))))
        elif path.is_file():
            sections.append((caption, figure_html(path, caption, shown=False)))
    sizes = metrics.get("split_sizes") or {}
    subtitle = run.path.name + ("; split sizes: " + ", ".join(f"{split} {count}" for split, count
                                                           in sizes.items()) if sizes else "")
    return write_page(run.report_html, f"{metrics.get('recipe', run.path.name)}: test report",
                      sections, subtitle)


# === Sections ===


def metrics_table(metrics: dict) -> str:
    """Every numeric test metric of the network and of each baseline, one row each."""
    model = metrics["model"]
    rows = {f"network ({model['name']})" if "name" in model else "network": model,
            **metrics.get("baselines", {})}
    keys = list(dict.fromkeys(k for row in rows.values() for k, v in row.items() if _is_number(v)))
    cells = [[html.escape(name)] + [_number(row.get(k)) for k in keys] for name, row in rows.items()]
    return _table(["model", *map(html.escape, keys)], cells)


def per_class_table(per_class: dict) -> str:
    columns = ("precision", "recall", "f1", "support")
    rows = [[html.escape(str(name))] + [_number(scores.get(c)) for c in columns]
            for name, scores in per_class.items()]
    return _table(["class", *columns], rows)


def training_html(run: RunDir) -> str:
    """The curves and, folded, the epoch-by-epoch history (no JavaScript: a <details>)."""
    parts = []
    if (run.report_dir / CURVES[0]).is_file():
        parts.append(figure_html(run.report_dir / CURVES[0], CURVES[1]))
    rows = read_history(run.history_csv)
    if rows:
        columns = list(rows[0])
        table = _table([html.escape(c) for c in columns],
                       [[_csv_cell(row.get(c)) for c in columns] for row in rows])
        parts.append(f"<details><summary>Epoch by epoch ({len(rows)} rows of history.csv)</summary>"
                     f"{table}</details>")
    return "\n".join(parts)


# === HTML pieces (also used by the export and search pages) ===


def figure_html(path: Path, caption: str, shown: bool = True) -> str:
    """A PNG embedded as a data URI; `caption` is its alt text, and shown below it if `shown`."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    caption = html.escape(caption)
    below = f"<figcaption>{caption}</figcaption>" if shown else ""
    return f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">{below}</figure>'



def markdown_html(text: str) -> str:
    """The markdown dlkeras writes as HTML; each line of source text escaped."""
    parts = []
    for kind, group in itertools.groupby(text.splitlines(), _line_kind):
        lines = [line.strip() for line in group]
        if kind == "heading":
            for line in lines:
                hashes, title = line.split(" ", 1)
                level = min(len(hashes) + 1, 6)  # the page's own title is the only <h1>
                parts.append(f"<h{level}>{_inline(title)}</h{level}>")
        elif kind == "item":
            parts.append("<ul>" + "".join(f"<li>{_inline(line[2:])}</li>" for line in lines) + "</ul>")
        elif kind == "row":
            rows = [_cells(line) for line in lines]
            ruled = len(rows) > 1 and all(re.fullmatch(r":?-+:?", cell) for cell in rows[1])
            header, body = (rows[0], rows[2:]) if ruled else ([], rows)
            parts.append(_table([_inline(c) for c in header], [[_inline(c) for c in r] for r in body]))
        elif kind == "text":  # dlkeras writes one sentence a line: keep them apart
            parts.append("<p>" + "<br>\n".join(_inline(line) for line in lines) + "</p>")
    return "\n".join(parts)


def page_html(title: str, sections: list[tuple[str, str]], subtitle: str = "") -> str:
    """A whole page: `sections` are (heading, HTML body) pairs; an empty heading adds none."""
    body = "\n".join((f"<section><h2>{html.escape(heading)}</h2>\n" if heading else "<section>\n")
                     + content + "\n</section>" for heading, content in sections)
    lead = f'<p class="subtitle">{html.escape(subtitle)}</p>\n' if subtitle else ""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n"
            f"<h1>{html.escape(title)}</h1>\n{lead}{body}\n</main>\n</body>\n</html>\n")


def write_page(path: Path, title: str, sections: list[tuple[str, str]], subtitle: str = "") -> Path:
    """Writes `page_html(...)` to `path` atomically; returns `path`."""
    write_text_atomic(path, page_html(title, sections, subtitle))
    return path


# === Helpers ===


def _line_kind(line: str) -> str:
    stripped = line.strip()
    if not stripped:
        return "blank"
    if re.match(r"#{1,6} ", stripped):
        return "heading"
    if stripped.startswith(("- ", "* ")):
        return "item"
    return "row" if stripped.startswith("|") else "text"


def _inline(text: str) -> str:
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


def _cells(line: str) -> list[str]:
    """A pipe-table row's cells; `\\|` is a literal bar inside a cell."""
    inner = line.strip().removeprefix("|").removesuffix("|")
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", inner)]


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A table from cells that are HTML already (escaped by the caller)."""
    head = "<tr>" + "".join(f"<th>{c}</th>" for c in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="wide"><table>{head}{body}</table></div>'  # a wide table scrolls alone


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _csv_cell(text) -> str:
    """A history.csv value: counts as written, other numbers like the metrics, text escaped."""
    for parse in (int, float):
        try:
            return _number(parse(text))
        except (TypeError, ValueError):
            pass
    return html.escape(str(text or ""))


def _number(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}" if 0 < abs(value) < 1e-3 else f"{value:.4f}"  # learning rates: 3e-05
