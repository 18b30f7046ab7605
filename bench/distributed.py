"""Scaling of train.distribution: examples/s on 1, 2 and 4 devices or processes, side by side.

    .venv/bin/python bench/distributed.py                      # cnn_digits, 2 rounds
    .venv/bin/python bench/distributed.py --recipe mlp_churn --rounds 3 --epochs 3

Each configuration is one `python -m dlkeras.train` run of the recipe (JAX backend, same
global batch) in a fresh process:
- "1 device": train.distribution=none;
- "N devices": data_parallel over N devices of one process (DLKERAS_CPU_DEVICES=N, which
  splits the CPU; on a GPU machine the real devices, with DLKERAS_CPU_DEVICES unset);
- "N processes": --workers N (multi_worker on a loopback coordinator).
Rounds are interleaved (every configuration once per round, in a rotated order) so that load
on a shared machine hits all of them alike. Throughput is training examples over the
seconds of the last epoch (the first one compiles), from the run's history.csv; efficiency is
that over the 1-device throughput. Collective time: one all-reduce of a buffer as large as the
model's weights, timed on the same devices or processes (`--collective` runs that part alone).
Several devices carved out of the same CPU cores share those cores, so on a 2-core machine
the honest figure is near or below 1x: the bench shows what the collectives cost, not a speed-up
the hardware cannot give. A line describing the machine is printed above the table; every
round's numbers, with the machine, go to --out/distributed.json (bench/results/ by default).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import machine  # bench/machine.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [("1 device", 1, 0), ("2 devices", 2, 0), ("4 devices", 4, 0),
           ("2 processes", 0, 2), ("4 processes", 0, 4)]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default="cnn_digits")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", type=Path, default=machine.RESULTS,
                        help="folder for distributed.json")
    parser.add_argument("--collective", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--floats", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args()


def train_once(recipe, devices, workers, epochs, overrides, folder: Path) -> dict:
    """One training run; examples/s of its last epoch and its weight count."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("DLKERAS_CPU_DEVICES", None)
    sets = [f"train.epochs={epochs}", "callbacks.early_stopping_patience=0",
            "callbacks.tensorboard=False", "train.time_budget_minutes=0", *overrides]
    argv = [sys.executable, "-m", "dlkeras.train", "--recipe", recipe, "--out", str(folder),
            *[a for s in sets for a in ("--set", s)]]
    if workers:
        argv += ["--workers", str(workers)]
    elif devices > 1:
        env["DLKERAS_CPU_DEVICES"] = str(devices)
        argv += ["--set", "train.distribution=data_parallel"]
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{' '.join(argv)} failed:\n{result.stderr[-2000:]}")
    run = (folder / "latest" / recipe).resolve()
    history = list(csv_rows(run / "history.csv"))
    data_line = next(line for line in result.stdout.splitlines() if line.startswith("data: "))
    train_examples = int(data_line.split()[1])  # "data: 3500 train / 750 val / ..."
    return {"examples_per_second": train_examples / float(history[-1]["seconds"]),
            "epoch_seconds": float(history[-1]["seconds"])}


def csv_rows(path: Path):
    import csv

    with open(path, newline="") as stream:
        yield from csv.DictReader(stream)


def weight_count(recipe: str, overrides) -> int:
    code = ("import sys; from dlkeras import validate, data, models;"
            f"r = validate.resolve_recipe({recipe!r}, {list(overrides)!r});"
            "d = data.build(r.data, r.train.seed, preset=r.model.preset);"
            "print(models.build(r.model, d.info).count_params())")
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                            text=True, check=True)
    return int(result.stdout.split()[-1])


def collective_seconds(floats: int, devices: int, processes: int) -> float:
    """Seconds per all-reduce of `floats` float32 over the devices or processes."""
    from dlkeras.engine import workers

    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    with tempfile.TemporaryDirectory() as folder:
        result_file = Path(folder) / "seconds.txt"
        argv = (sys.executable, str(Path(__file__).resolve()), "--collective",
                str(max(devices, processes)), "--floats", str(floats), "--out", folder)
        if processes:
            address = f"127.0.0.1:{workers.free_port()}"
            code = workers.launch([workers.Worker(f"process {i}", argv, {
                **env, "KERAS_DISTRIBUTION_JOB_ADDRESSES": address,
                "KERAS_DISTRIBUTION_NUM_PROCESSES": str(processes),
                "KERAS_DISTRIBUTION_PROCESS_ID": str(i)}) for i in range(processes)])
        else:
            env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
            code = subprocess.run(argv, env=env).returncode
        if code:
            raise SystemExit("the collective timing failed")
        return float(result_file.read_text())


def time_collective(count: int, floats: int, out: Path) -> None:
    """(In its own process) times jit(sum over a sharded axis): one all-reduce per call."""
    import jax
    import keras
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    if os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES"):
        keras.distribution.initialize()
    mesh = Mesh(np.array(jax.devices()), ("batch",))
    local = np.ones((len(jax.local_devices()), floats), np.float32)
    array = jax.make_array_from_process_local_data(NamedSharding(mesh, PartitionSpec("batch")), local)
    reduce = jax.jit(lambda x: x.sum(0), out_shardings=NamedSharding(mesh, PartitionSpec()))
    reduce(array).block_until_ready()
    times = []
    for _ in range(20):
        started = time.perf_counter()
        reduce(array).block_until_ready()
        times.append(time.perf_counter() - started)
    if jax.process_index() == 0:
        (out / "seconds.txt").write_text(str(statistics.median(times)))


def main() -> int:
    args = parse_args()
    if args.collective:
        time_collective(args.collective, args.floats, args.out)
        return 0
    described = machine.describe()
    measured = {name: [] for name, _, _ in CONFIGS}
    with tempfile.TemporaryDirectory() as folder:
        for round_index in range(args.rounds):
            for name, devices, workers in machine.in_turn(CONFIGS, round_index):
                result = train_once(args.recipe, devices, workers, args.epochs, args.overrides,
                                    Path(folder) / f"{round_index}-{name.replace(' ', '_')}")
                measured[name].append(result["examples_per_second"])
                print(f"round {round_index + 1}: {name}: {result['examples_per_second']:.0f} "
                      f"examples/s", flush=True)
    floats = weight_count(args.recipe, args.overrides)
    base = statistics.mean(measured["1 device"])
    rows = []
    for name, devices, workers in CONFIGS:
        speed = statistics.mean(measured[name])
        collective = (collective_seconds(floats, devices, workers)
                      if max(devices, workers) > 1 else 0.0)
        rows.append({"configuration": name, "examples_per_second": round(speed, 1),
                     "spread": round(statistics.pstdev(measured[name]), 1),
                     "efficiency": round(speed / base, 3),
                     "all_reduce_ms": round(collective * 1000, 3)})
    print(f"\n{machine.summary(described, packages=('keras', 'jax'))}")
    print(f"{args.recipe}, JAX, {args.epochs} epochs, {args.rounds} rounds; all-reduce of "
          f"{floats} float32 weights per step")
    print("| configuration | examples/s | spread | vs 1 device | all-reduce per step (ms) |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['configuration']} | {row['examples_per_second']} | {row['spread']} | "
              f"{row['efficiency']:.2f}x | {row['all_reduce_ms']} |")
    path = machine.write_results("distributed", {
        "recipe": args.recipe, "epochs": args.epochs, "rounds": args.rounds,
        "overrides": args.overrides, "weights": floats, "examples_per_second": measured,
        "rows": rows}, path=args.out / "distributed.json", machine=described)
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
