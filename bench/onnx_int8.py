"""int8 ONNX of a text model with and without its attention fused, batch 1, side by side.

    .venv/bin/python bench/onnx_int8.py --onnx saved_models/bert_tickets/1/model.onnx
    .venv/bin/python bench/onnx_int8.py --onnx <export>/model.onnx --rounds 5 --lengths 16 48

Quantizes the export's float `model.onnx` twice with `dlkeras.export.onnx_int8`: once with
every rewrite but the attention fusion, once with it (`onnx_attention`, checked on the same
kind of inputs as an export's calibration examples), and times both at batch 1 on one thread
and on every core: `--calls` calls of each contender in turn, over `--rounds` rounds in a
rotated order, so load from other jobs on a shared machine falls on every contender alike.
Not call by call: onnxruntime's threads keep spinning for a while after a call, and would slow
the next session's call (interleaved so, every contender took about 7.5 ms instead of 3-5).
Inputs are single texts of random
word-piece ids (ids 1000-20000, [CLS] first) whose lengths are spread evenly over `--lengths`,
the same texts for every contender. Prints medians over all calls, the ratio to the unfused
model on the same thread count, and the largest difference between the two models' outputs;
writes them with the machine to bench/results/onnx_int8.json (`--results`). A benchmark, never a
test: nothing asserts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import machine  # bench/machine.py, beside this script
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def texts(lengths: tuple[int, int], count: int, names: list[str]) -> list[dict]:
    """`count` single-text feeds (token ids, zero segments, full padding mask) by input name."""
    rng = np.random.default_rng(0)
    feeds = []
    for length in np.linspace(*lengths, count).round().astype(int):
        ids = rng.integers(1000, 20000, (1, length))
        ids[0, 0] = 101
        values = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": np.ones_like(ids)}
        feeds.append({name: values[name] for name in names})
    return feeds


def session(path: Path, threads: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--onnx", type=Path, required=True, help="an export's float model.onnx")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=100, help="calls in a row per contender and round")
    parser.add_argument("--lengths", type=int, nargs=2, default=(16, 48), metavar=("SHORTEST", "LONGEST"))
    parser.add_argument("--results", type=Path, default=machine.RESULTS / "onnx_int8.json")
    args = parser.parse_args()
    described = machine.describe()
    print(machine.summary(described, packages=("onnxruntime", "onnx")), flush=True)

    import onnx

    from dlkeras.export import latency, onnx_attention
    from dlkeras.export.onnx_int8 import export_onnx_int8

    names = [value.name for value in onnx.load(str(args.onnx), load_external_data=False).graph.input]
    singles = texts(tuple(args.lengths), 8, names)
    work = Path(tempfile.mkdtemp(prefix="onnx_int8_bench."))
    models = {
        "int8": (work / "plain.onnx", None),
        "int8 + attention": (work / "attention.onnx",
                             lambda names: [*singles[:4], onnx_attention.padded_batch(singles[:4])]),
    }
    details = {}
    for name, (path, feeds) in models.items():
        started = time.perf_counter()
        details[name] = export_onnx_int8(args.onnx, path, feeds=feeds)
        print(f"{name}: written in {time.perf_counter() - started:.1f} s, fused {details[name]['fused']}",
              flush=True)
    contenders = {(name, threads): session(path, threads)
                  for name, (path, _) in models.items() for threads in latency.thread_counts()}
    feeds = {key: [onnx_attention.typed(s, feed) for feed in singles] for key, s in contenders.items()}
    for key, s in contenders.items():
        for feed in feeds[key]:
            s.run(None, feed)
    times = {key: [] for key in contenders}
    order = list(contenders)
    for round_index in range(args.rounds):
        for key in machine.in_turn(order, round_index):
            for call in range(args.calls):
                feed = feeds[key][call % len(singles)]
                started = time.perf_counter()
                contenders[key].run(None, feed)
                times[key].append(time.perf_counter() - started)
    difference = onnx_attention.max_difference(
        models["int8"][0].read_bytes(), models["int8 + attention"][0].read_bytes(),
        [onnx_attention.typed(contenders[order[0]], feed) for feed in singles])
    rows = []
    print("\n| model | threads | batch 1 median (ms) | vs int8 |\n|---|---|---|---|")
    for (name, threads), values in times.items():
        median = 1000 * statistics.median(values)
        base = 1000 * statistics.median(times[("int8", threads)])
        rows.append({"model": name, "threads": threads, "batch_1_ms": round(median, 3),
                     "ratio": round(base / median, 3)})
        print(f"| {name} | {threads} | {median:.2f} | {base / median:.2f}x |")
    print(f"\nlargest output difference int8 vs int8 + attention: {difference:.2e}")
    results = {"onnx": str(args.onnx), "lengths": list(args.lengths), "rounds": args.rounds,
               "calls": args.calls, "rows": rows, "fused": {k: v["fused"] for k, v in details.items()},
               "max_output_difference": difference}
    print(f"written: {machine.write_results('onnx_int8', results, path=args.results, machine=described)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
