"""What a search leaves behind: trials table (CSV, markdown), plots (PNG), the two on one HTML
page, and the best recipe.

Rows are plain dicts (see `search.trial_rows`); nothing here imports Keras.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from dlkeras import config
from dlkeras.io import pyplot, save_figure_atomic, write_json_atomic, write_text_atomic
from dlkeras.runs import SearchDir
from dlkeras.tasks import html_report
from dlkeras.tuning import space as search_space


def write(search_dir: SearchDir, recipe: config.Recipe, base: config.Recipe, recipe_ref: str,
          rows: list[dict], best_trial: str, defaults: dict | None = None) -> str:
    """Writes trials.csv/.md/.png, best_recipe.toml and best.json; returns the printed summary.

    Args:
        recipe: the searched recipe (with the command line's --set values).
        base: the recipe `recipe_ref` names on its own, which best_recipe.toml extends.
        best_trial: id of the best trial.
        defaults: the record of the recipe's own settings trained once (`--compare-defaults`).
    """
    tune = recipe.tune
    best = next(row for row in rows if row["trial"] == best_trial)
    values = {param.key: best[param.key] for param in tune.space}
    best_recipe = search_space.trial_recipe(recipe, values)
    settings = search_space.changed_settings(base, best_recipe)
    command = search_space.rerun_command(recipe_ref, settings)
    header = (f"Best trial {best_trial} of {search_dir.path.name}: {tune.objective} "
              f"{best[tune.objective]:.4f}\n{command}")
    write_text_atomic(search_dir.best_recipe_toml, search_space.recipe_toml(
        recipe_ref, f"{recipe.name}_tuned", settings, header))
    default_score = best_score(defaults, tune) if defaults else None
    write_json_atomic(search_dir.best_json, {
        "trial": best_trial, "objective": tune.objective,
        "direction": search_space.direction(tune), "score": best[tune.objective],
        "values": values, "defaults_score": default_score, "command": command,
        "best_recipe": str(search_dir.best_recipe_toml),
    })
    table = markdown_table(rows, tune, best_trial)
    write_text_atomic(search_dir.trials_markdown, table)
    write_text_atomic(search_dir.trials_csv, csv_text(rows))
    plot_trials(rows, tune, best_trial, search_dir.trials_plot)
    lines = [table, f"best trial {best_trial}: {tune.objective} {best[tune.objective]:.4f}"]
    if default_score is not None:
        lines[-1] += f" (the recipe's own settings: {default_score:.4f})"
    lines += [f"re-run it: {command}",
              f"or: python -m dlkeras.train --recipe {search_dir.best_recipe_toml}"]
    html_report.write_page(search_dir.report_html, f"{recipe.name}: hyperparameter search", [
        ("Trials", html_report.markdown_html("\n".join(lines))),
        ("Objective per trial", html_report.figure_html(
            search_dir.trials_plot, "The objective per trial and against each searched value")),
    ], search_dir.path.name)
    lines += [f"search directory: {search_dir.path}", f"report: {search_dir.report_html}"]
    return "\n".join(lines)


def best_score(record: dict, tune: config.TuneConfig) -> float | None:
    """The best epoch's objective in a trial record's history."""
    scores = [v for v in record["history"].get(tune.objective, []) if math.isfinite(v)]
    if not scores:
        return None
    return (min if search_space.direction(tune) == "min" else max)(scores)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown_table(rows: list[dict], tune: config.TuneConfig, best_trial: str) -> str:
    """Trials as a markdown table, the best one marked with *."""
    columns = list(rows[0]) if rows else []
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [_cell(row[c]) for c in columns]
        if row["trial"] == best_trial:
            cells[0] += " *"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["trial"])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


# === Plots ===


def plot_trials(rows: list[dict], tune: config.TuneConfig, best_trial: str, path: Path) -> None:
    """Objective per trial (colour: epochs trained), then objective against each parameter."""
    import matplotlib.ticker

    plt = pyplot()

    done = [r for r in rows if r[tune.objective] is not None]
    panels = 1 + len(tune.space)
    columns = min(panels, 3)
    figure, axes = plt.subplots(-(-panels // columns), columns,
                                figsize=(4.4 * columns, 3.6 * -(-panels // columns)),
                                squeeze=False)
    for axis in axes.ravel()[panels:]:
        axis.axis("off")
    scores = [r[tune.objective] for r in done]
    epochs = [int(r["epochs"].split("-")[-1]) if r["epochs"] else 0 for r in done]
    first = axes[0][0]
    points = first.scatter([int(r["trial"]) for r in done], scores, c=epochs, cmap="viridis")
    figure.colorbar(points, ax=first, label="epochs trained")
    running = (min if search_space.direction(tune) == "min" else max)
    first.step([int(r["trial"]) for r in done],
               [running(scores[: i + 1]) for i in range(len(scores))], where="post",
               color="grey", linewidth=1, label="best so far")
    first.set(xlabel="trial", ylabel=tune.objective, title="objective per trial")
    first.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    first.legend(fontsize=8)
    for axis, param in zip(axes.ravel()[1:], tune.space):
        _plot_param(axis, param, done, tune.objective, best_trial)
    figure.tight_layout()
    save_figure_atomic(figure, path, dpi=100)


def _plot_param(axis, param, done, objective, best_trial) -> None:
    import matplotlib.ticker
    if param.kind == "choice":
        labels = [repr(config.parse_value(v)) for v in param.values]
        x = [labels.index(repr(r[param.key])) for r in done]
        axis.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        axis.set_xlim(-0.5, len(labels) - 0.5)
    else:
        x = [r[param.key] for r in done]
        margin = (param.high - param.low) * 0.05
        axis.set_xlim(param.low - margin, param.high + margin)
        if param.kind == "log_float":
            axis.set_xscale("log")
            axis.set_xlim(param.low / 1.2, param.high * 1.2)
            axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    y = [r[objective] for r in done]
    axis.scatter(x, y, alpha=0.8)
    for xi, yi, row in zip(x, y, done):
        if row["trial"] == best_trial:
            axis.scatter([xi], [yi], marker="*", s=200, color="red", label="best")
            axis.legend(fontsize=8)
    axis.set(xlabel=param.key, ylabel=objective)


