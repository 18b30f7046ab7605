"""A command that ends through `cli.exit_process` against the same command ending as Python does.

    .venv/bin/python bench/exit.py                       # mlp_churn smoke, 3 backends, 2 rounds
    .venv/bin/python bench/exit.py --backends jax --rounds 3

Each round runs the recipe's SMOKE variant twice per backend, each run in its own process:
`python -m dlkeras.train ...` ("prompt": the command's `__main__` line ends through
`cli.exit_process`, which skips the teardown of every loaded module) and the same `main` called
from `python -c` and ended by `sys.exit` ("teardown": the interpreter's full shutdown). Which of
the two goes first alternates between rounds, so a busy moment of the shared machine does not
favour one of them. The table gives median wall seconds and CPU seconds (user + system) per
backend and the teardown / prompt ratios. Prints the machine and writes it with every run to
bench/results/exit.json. A benchmark, never a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import machine  # bench/machine.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("prompt", "teardown")
FULL_TEARDOWN = "import sys; from dlkeras.train import main; sys.exit(main(sys.argv[1:]))"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="mlp_churn")
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "exit.json")
    return parser.parse_args(argv)


def smoke_arguments(recipe: str, out: Path) -> list[str]:
    """`dlkeras.train` arguments of the recipe's SMOKE variant, without TensorBoard logs."""
    sys.path.insert(0, str(ROOT))
    from dlkeras import config

    sets = [*config.load_recipe_module(recipe).SMOKE, "callbacks.tensorboard=false"]
    return ["--recipe", recipe, "--out", str(out), *[a for s in sets for a in ("--set", s)]]


def run_once(kind: str, arguments: list[str], backend: str) -> dict | str:
    """Wall and CPU seconds of one run of `dlkeras.train ARGUMENTS`; the error text when it
    failed."""
    start = ["-m", "dlkeras.train"] if kind == "prompt" else ["-c", FULL_TEARDOWN]
    environment = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    result = subprocess.run([sys.executable, *start, *arguments], cwd=ROOT, capture_output=True,
                            text=True, env=environment)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode:
        return (result.stderr or result.stdout)[-600:]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": round(wall, 2), "cpu": round(cpu, 2)}



def main(argv=None) -> int:
    args = parse_args(argv)
    described = machine.describe()
    print(machine.summary(described), flush=True)
    runs = {backend: {kind: [] for kind in KINDS} for backend in args.backends}
    with tempfile.TemporaryDirectory(prefix="dlkeras-exit-") as scratch:
        arguments = smoke_arguments(args.recipe, Path(scratch) / "runs")
        for index in range(args.rounds):
            for backend in args.backends:
                for kind in machine.in_turn(KINDS, index):
                    found = run_once(kind, arguments, backend)
                    runs[backend][kind].append(found)
                    print(f"round {index + 1} {backend} {kind}: {found}", flush=True)
    table = {}
    print("\n| backend | prompt wall s | teardown wall s | prompt CPU s | teardown CPU s | "
          "teardown / prompt (wall) |\n|---|---|---|---|---|---|")
    for backend, kinds in runs.items():
        row = {f"{kind}_{key}": machine.median_of(kinds[kind], key)
               for kind in KINDS for key in ("wall", "cpu")}
        both = row["prompt_wall"] and row["teardown_wall"]
        row["teardown_over_prompt"] = round(row["teardown_wall"] / row["prompt_wall"], 3) if both else None
        table[backend] = row
        print(f"| {backend} | {row['prompt_wall']} | {row['teardown_wall']} | {row['prompt_cpu']} | "
              f"{row['teardown_cpu']} | {row['teardown_over_prompt']} |")
    result = {"recipe": args.recipe, "rounds": args.rounds, "runs": runs, "medians": table}
    path = machine.write_results("exit", result, path=args.out, machine=described)
    print(f"\nwritten: {path}")
    print(machine.summary(described))
    return 0


if __name__ == "__main__":
    sys.exit(main())
