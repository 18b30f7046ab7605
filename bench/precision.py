"""float32 against mixed_bfloat16 on whole recipes: training time and validation metric.

    .venv/bin/python bench/precision.py                                   # three recipes, 1 round
    .venv/bin/python bench/precision.py --recipes mlp_churn --rounds 3
    .venv/bin/python bench/precision.py --recipes bert_tickets effnet_defects \
        --set bert_tickets:data.max_examples=2000 --set effnet_defects:train.keep_stage=last

Each round trains every recipe under each policy (`--set train.precision=...`), each run in its
own process with the same seed, the policies' order alternating between rounds, so a busy
moment of the shared machine does not favour one of them. Per run: the training seconds of the
stages (from metrics.json), the best validation accuracy of any epoch (history.csv) and the
test accuracy and macro-F1. The table gives medians over rounds and the bf16 / float32 ratio of
training time. `train.precision=auto` takes bfloat16 only where its probe (a matrix multiply) is
faster; this bench says whether whole recipes agree. Prints the machine and writes it with
every run to bench/results/precision.json.
A benchmark, never a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import machine  # bench/machine.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ("float32", "mixed_bfloat16")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", nargs="+", default=["mlp_churn", "cnn_digits", "effnet_defects"])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="extra override for every run, or for one recipe as RECIPE:KEY=VALUE "
                             "(e.g. bert_tickets:data.max_examples=2000)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "precision.json")
    return parser.parse_args(argv)


def train_once(recipe: str, policy: str, overrides: list[str], folder: Path) -> dict:
    """One run in its own process; its times and metrics."""
    command = [sys.executable, "-m", "dlkeras.train", "--recipe", recipe, "--out", str(folder),
               "--set", f"train.precision={policy}", "--set", "callbacks.tensorboard=false"]
    for override in overrides:
        target, _, setting = override.rpartition(":") if ":" in override.split("=")[0] else ("", "", override)
        if target in ("", recipe):
            command += ["--set", setting]
    began = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    wall = time.perf_counter() - began
    if result.returncode:
        return {"error": (result.stderr or result.stdout)[-600:]}
    run = max(folder.glob(f"{recipe}-*"), key=lambda path: path.stat().st_mtime)
    metrics = json.loads((run / "metrics.json").read_text())
    rows = []
    if (run / "history.csv").is_file():  # absent when no stage trained (a perfect linear probe)
        with open(run / "history.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
    validation = [float(row["val_accuracy"]) for row in rows if row.get("val_accuracy")]
    chosen = json.loads((run / "env.json").read_text()).get("precision", {})
    return {"wall_seconds": round(wall, 1),
            "train_seconds": round(sum(metrics["train_seconds"].values()), 1),
            "best_val_accuracy": max(validation) if validation else None,
            "test_accuracy": metrics["model"]["accuracy"], "test_macro_f1": metrics["model"]["macro_f1"],
            "policy_used": chosen.get("policy")}


def summarise(runs: list[dict]) -> dict:
    done = [run for run in runs if "error" not in run]
    if not done:
        return {"errors": [run["error"] for run in runs]}
    keys = ("train_seconds", "wall_seconds", "best_val_accuracy", "test_accuracy", "test_macro_f1")
    return {key: round(statistics.median(run[key] for run in done), 4) for key in keys
            if all(run[key] is not None for run in done)} | {"runs": len(done)}


def main(argv=None) -> int:
    args = parse_args(argv)
    described = machine.describe()
    print(machine.summary(described), flush=True)
    runs: dict[str, dict[str, list]] = {r: {p: [] for p in POLICIES} for r in args.recipes}
    with tempfile.TemporaryDirectory(prefix="dlkeras-precision-") as scratch:
        for index in range(args.rounds):
            order = machine.in_turn(POLICIES, index)
            for recipe in args.recipes:
                for policy in order:
                    result = train_once(recipe, policy, args.overrides, Path(scratch))
                    runs[recipe][policy].append(result)
                    print(f"round {index + 1} {recipe} {policy}: {result}", flush=True)
    table = {recipe: {policy: summarise(found) for policy, found in by_policy.items()}
             for recipe, by_policy in runs.items()}
    result = {"settings": {"rounds": args.rounds, "overrides": args.overrides}, "recipes": table,
              "runs": runs}
    path = machine.write_results("precision", result, path=args.out, machine=described)
    print(machine.summary(described))
    print(render(table))
    print(f"written: {path}")
    return 0


def render(table: dict) -> str:
    lines = ["| recipe | policy | train s | val accuracy (best epoch) | test accuracy | test macro-F1 "
             "| train time vs float32 |", "|---|---|---|---|---|---|---|"]
    for recipe, by_policy in table.items():
        base = by_policy["float32"].get("train_seconds")
        for policy, row in by_policy.items():
            if "errors" in row:
                lines.append(f"| {recipe} | {policy} | failed: {row['errors'][0][-120:]!r} | | | | |")
                continue
            ratio = f"{row['train_seconds'] / base:.2f}x" if base else ""
            lines.append(f"| {recipe} | {policy} | {row['train_seconds']} | {row.get('best_val_accuracy')} "
                         f"| {row['test_accuracy']:.4f} | {row['test_macro_f1']:.4f} | {ratio} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
