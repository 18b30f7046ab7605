"""One projection's forward and backward in PyTorch, with Keras' weight layout and nn.Linear's.

Keras keeps a Dense or EinsumDense kernel input-by-output and the Keras torch backend multiplies
the inputs by it (`torch.addmm(bias, x, kernel)`); `nn.Linear` keeps its weight
output-by-input (`F.linear(x, weight, bias)`). BLAS runs the two as different transpositions,
so this measures, for the bert_tickets encoder's projection shapes, whether the layout alone
makes Keras' matrix products slower:

    .venv/bin/python bench/projection_layout.py [--rows 1280] [--rounds 3]

Rows are token positions (a batch of 32 texts of 40 tokens by default). Each round times both
layouts on every shape, in alternating order; the table gives the median milliseconds of a
forward and backward pass and their ratio, and bench/results/projection_layout.json keeps every
round with the machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import machine  # bench/machine.py, beside this script

SHAPES = ((384, 384), (384, 1536), (1536, 384))  # MiniLM-L6: attention, feed-forward in and out
LAYOUTS = ("keras", "linear")


def pass_ms(layout: str, rows: int, inputs: int, outputs: int, repeats: int) -> float:
    """Milliseconds of one forward and backward pass, the best of `repeats` after a warm-up."""
    import torch

    torch.manual_seed(0)
    x = torch.randn(rows, inputs, requires_grad=True)
    bias = torch.randn(outputs, requires_grad=True)
    gradient = torch.randn(rows, outputs)
    if layout == "keras":
        kernel = torch.randn(inputs, outputs, requires_grad=True)

        def step():
            torch.addmm(bias, x, kernel).backward(gradient)
    else:
        weight = torch.randn(outputs, inputs, requires_grad=True)

        def step():
            torch.nn.functional.linear(x, weight, bias).backward(gradient)
    for _ in range(3):
        step()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - started)
    return best * 1e3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=32 * 40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--results", type=Path, default=machine.RESULTS / "projection_layout.json")
    args = parser.parse_args(argv)
    described = machine.describe()
    print(machine.summary(described), flush=True)
    rounds = {f"{i}x{o}": {layout: [] for layout in LAYOUTS} for i, o in SHAPES}
    for index in range(args.rounds):
        for inputs, outputs in SHAPES:
            for layout in machine.in_turn(LAYOUTS, index):
                ms = pass_ms(layout, args.rows, inputs, outputs, args.repeats)
                rounds[f"{inputs}x{outputs}"][layout].append(round(ms, 3))
        print(f"round {index + 1}: {rounds}", flush=True)
    table = {shape: {layout: statistics.median(times[layout]) for layout in LAYOUTS}
             for shape, times in rounds.items()}
    print(f"\n{args.rows} rows; forward + backward, best of {args.repeats}, median of {args.rounds} rounds")
    print("| shape (in x out) | keras kernel ms | nn.Linear weight ms | keras / linear |")
    print("|---|---|---|---|")
    for shape, row in table.items():
        row["keras_over_linear"] = round(row["keras"] / row["linear"], 3)
        print(f"| {shape} | {row['keras']:.2f} | {row['linear']:.2f} | {row['keras_over_linear']:.2f} |")
    path = machine.write_results("projection_layout", {"rows": args.rows, "rounds": rounds,
                                                       "medians": table},
                                 path=args.results, machine=described)
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
