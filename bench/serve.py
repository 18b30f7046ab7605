"""Serving under load: 16 concurrent HTTP clients against `python -m dlkeras.serve`.

    .venv/bin/python bench/serve.py --models /tmp/s/saved_models               # 30 s per model
    .venv/bin/python bench/serve.py --models /tmp/s/saved_models --seconds 5   # a quick look

The exports it needs (kept out of the repository's saved_models/):

    python -m dlkeras.train --recipe mlp_churn --out /tmp/s/runs --set train.epochs=3
    python -m dlkeras.export --runs /tmp/s/runs --recipe mlp_churn --out /tmp/s/saved_models
    python -m dlkeras.train --recipe bert_tickets --out /tmp/s/runs --set data.max_examples=1000 \\
        --set train.epochs=1 --set train.time_budget_minutes=3
    python -m dlkeras.export --runs /tmp/s/runs --recipe bert_tickets --out /tmp/s/saved_models

One server process serves both models (the fastest gated format of each, prediction cache off
so every request reaches the runtime). For each model, `--clients` threads, each on a
keep-alive connection, send `--instances` real inputs per request (default 1; tweets of the
recipe's data set, rows of the churn table) for `--seconds` in all; the table has the requests
answered, the errors (zero expected), p50 and p99 latency, the throughput, and the mean
micro-batch size the server formed. Side by side in the same run, the same artifact is called
directly in this process (raw inputs converted by the server's own converter, then the runtime)
at batch sizes 1, 4, 8, 16, 32 and 64, 2 s per size in all; the best of those is the ceiling the
server's throughput is compared with. Served load and direct calls take turns over `--rounds` rounds
(each a share of the time, in a rotated order), so that load on a shared machine hits both
sides of that ratio alike; the figures pool every round. The server's resident memory is read
from its /metrics after warm-up and at the end (it should stay flat). Prints a line describing
the machine above the table, and writes the machine and every number to
bench/results/serve.json (`--out`). A benchmark, never a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import machine  # bench/machine.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("bert_tickets", "mlp_churn")
BATCH_SIZES = (1, 4, 8, 16, 32, 64)
POOL = 2000  # distinct inputs each model is sent (cycled)
DIRECT_SECONDS = 2.0  # per batch size, over all rounds


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, required=True, help="folder of exports (recipe/version/)")
    parser.add_argument("--seconds", type=float, default=30.0, help="load duration per model")
    parser.add_argument("--rounds", type=int, default=3,
                        help="turns of served load and direct calls the time is split into")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--instances", type=int, default=1, help="instances per request")
    parser.add_argument("--recipes", nargs="+", default=list(MODELS), choices=MODELS,
                        help="the models to load (default: both)")
    parser.add_argument("--format", default="fastest", help="--format of the server")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "serve.json")
    return parser.parse_args(argv)


# === Inputs ===


def raw_inputs(name: str) -> list:
    """Real inputs of the model's data set, as instances (texts; rows as JSON objects)."""
    from dlkeras.data import sources

    if name == "bert_tickets":
        return sources.load_airline_tweets()["text"].head(POOL).tolist()
    frame = sources.load_wa_churn().dropna().head(POOL)
    return json.loads(frame.to_json(orient="records"))


# === The server ===


class Server:
    def __init__(self, args):
        command = [sys.executable, "-m", "dlkeras.serve", str(args.models), "--port", "0",
                   "--format", args.format, "--cache-size", "0",
                   "--max-batch-size", str(args.max_batch_size), "--max-wait-ms", str(args.max_wait_ms)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True).start()
        self.host, self.port = self._address()
        while not self._ready():
            time.sleep(0.2)

    def _address(self):
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and self.process.poll() is None:
            for line in list(self.lines):
                if line.startswith("listening on http://"):
                    host, port = line.split()[2].removeprefix("http://").rsplit(":", 1)
                    return host, int(port)
            time.sleep(0.1)
        raise SystemExit("the server did not start:\n" + "".join(self.lines))

    def _ready(self) -> bool:
        try:
            return self.call("GET", "/readyz")[0] == 200
        except OSError:
            return False

    def call(self, method: str, path: str, body=None):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            connection.request(method, path, body=json.dumps(body) if body is not None else None)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def metrics(self) -> dict[str, float]:
        samples = {}
        for line in self.call("GET", "/metrics")[1].decode().splitlines():
            if line and not line.startswith("#"):
                sample, _, value = line.rpartition(" ")
                samples[sample] = float(value)
        return samples

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(120)


# === Load ===


def load(server: Server, name: str, inputs: list, clients: int, seconds: float, per_request: int = 1) -> dict:
    """`clients` threads sending `per_request` instances per request for `seconds`; raw timings."""
    path = f"/v1/models/{name}:predict"
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[list[str]] = [[] for _ in range(clients)]
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(index: int):
        connection = http.client.HTTPConnection(server.host, server.port, timeout=120)
        start.wait()
        i = index
        while time.perf_counter() < stop_at[0]:
            body = json.dumps({"instances": [inputs[(i + k) % len(inputs)] for k in range(per_request)]})
            i += clients
            began = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                payload = response.read()
                if response.status != 200:
                    errors[index].append(f"{response.status}: {payload[:200]!r}")
                    continue
            except (OSError, http.client.HTTPException) as error:
                errors[index].append(repr(error))
                connection.close()
                connection = http.client.HTTPConnection(server.host, server.port, timeout=120)
                continue
            latencies[index].append(time.perf_counter() - began)
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    return {"seconds": time.perf_counter() - began,
            "latencies": [t for per_client in latencies for t in per_client],
            "errors": [e for per_client in errors for e in per_client]}


def summarise_load(slices: list[dict], clients: int, per_request: int) -> dict:
    """Requests, errors, latency percentiles and rates over every slice of one model's load."""
    elapsed = sum(part["seconds"] for part in slices)
    answered = sorted(t for part in slices for t in part["latencies"])
    failed = [e for part in slices for e in part["errors"]]
    return {
        "clients": clients, "seconds": round(elapsed, 1), "requests": len(answered),
        "errors": len(failed), "first_errors": failed[:3],
        "p50_ms": round(1000 * statistics.median(answered), 2) if answered else None,
        "p99_ms": round(1000 * answered[int(0.99 * (len(answered) - 1))], 2) if answered else None,
        "requests_per_s": round(len(answered) / elapsed, 1),
        "instances_per_s": round(len(answered) * per_request / elapsed, 1),
    }


def direct(model, inputs: list, seconds: float) -> dict[int, tuple[int, float]]:
    """Examples done and seconds taken per batch size by the artifact called in this process:
    the server's own converter and runtime (raw inputs to model inputs to predictions),
    without HTTP, JSON or batching."""
    counts = {}
    for size in BATCH_SIZES:
        batches = [inputs[i : i + size] for i in range(0, len(inputs) - size + 1, size)]
        model.predict(model.convert(batches[0]))  # warm-up (and the interpreter's resize)
        done, began, i = 0, time.perf_counter(), 0
        while time.perf_counter() - began < seconds:
            model.predict(model.convert(batches[i % len(batches)]))
            done, i = done + size, i + 1
        counts[size] = (done, time.perf_counter() - began)
    return counts


def summarise_direct(slices: list[dict[int, tuple[int, float]]]) -> dict:
    rates = {size: round(sum(part[size][0] for part in slices)
                         / sum(part[size][1] for part in slices), 1) for size in BATCH_SIZES}
    best = max(rates, key=rates.get)
    return {"examples_per_s": rates, "best_batch_size": best, "best_examples_per_s": rates[best]}


def measure(server: Server, served: dict, models: dict, inputs: dict, args) -> dict:
    """Served load and direct calls of every model, taking turns over `args.rounds` rounds."""
    turns = [(name, side) for name in args.recipes for side in ("served", "direct")]
    loads = {name: [] for name in args.recipes}
    calls = {name: [] for name in args.recipes}
    batches = {name: [0.0, 0.0] for name in args.recipes}  # micro-batches formed, instances in them
    for round_index in range(args.rounds):
        for name, side in machine.in_turn(turns, round_index):
            if side == "direct":
                calls[name].append(direct(models[name], inputs[name], DIRECT_SECONDS / args.rounds))
                print(f"round {round_index + 1}: {name} direct", flush=True)
                continue
            before = server.metrics()
            loads[name].append(load(server, name, inputs[name], args.clients,
                                    args.seconds / args.rounds, args.instances))
            after = server.metrics()
            tag = f'{{model="{name}:{served[name]["version"]}"}}'
            for index, part in enumerate(("count", "sum")):
                key = f"dlkeras_serve_batch_size_{part}{tag}"
                batches[name][index] += after[key] - before.get(key, 0)
            print(f"round {round_index + 1}: {name} served, {len(loads[name][-1]['latencies'])} "
                  "requests", flush=True)
    rows = {}
    for name in args.recipes:
        count, items = batches[name]
        rows[name] = {"format": served[name]["format"],
                      **summarise_load(loads[name], args.clients, args.instances),
                      "mean_batch_size": round(items / count, 2) if count else None,
                      "direct": summarise_direct(calls[name])}
        rows[name]["served_vs_direct"] = round(
            rows[name]["instances_per_s"] / rows[name]["direct"]["best_examples_per_s"], 3)
    return rows


# === Main ===


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    from dlkeras.io import write_json_atomic
    from dlkeras.serving.registry import discover, load_model

    folders = {found.name: found for found in discover(args.models)[0]}
    missing = [name for name in args.recipes if name not in folders]
    if missing:
        raise SystemExit(f"{args.models} lacks exports of {missing}; see `bench/serve.py --help`")
    inputs = {name: raw_inputs(name) for name in args.recipes}
    described = machine.describe()
    server = Server(args)
    served = {m["name"]: m for m in json.loads(server.call("GET", "/v1/models")[1])["models"]}
    # the same artifacts without HTTP, in this process, same machine, same run
    models = {name: load_model(folders[name], served[name]["format"]) for name in args.recipes}
    for name in args.recipes:  # warm-up: every batch shape the runtimes will see
        load(server, name, inputs[name], args.clients, 2.0, args.instances)
    rss_start = server.metrics()["process_resident_memory_bytes"]
    rows = measure(server, served, models, inputs, args)
    rss_end = server.metrics()["process_resident_memory_bytes"]
    exit_code = server.stop()
    load_average = described["load_average"]
    result = {
        "machine": described,
        "command": [sys.executable, *sys.argv],
        "load_average_at_start": load_average[0] if load_average else None,
        "settings": {"clients": args.clients, "instances_per_request": args.instances,
                     "seconds": args.seconds, "rounds": args.rounds, "format": args.format,
                     "max_batch_size": args.max_batch_size, "max_wait_ms": args.max_wait_ms,
                     "cache": "off"},
        "models": rows,
        "server_rss_mib": {"start": round(rss_start / 2**20, 1), "end": round(rss_end / 2**20, 1)},
        "server_exit_code_after_sigterm": exit_code,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, result)
    print(table(result))
    print(f"written: {args.out}")
    return 0


def table(result: dict) -> str:
    settings = result["settings"]
    lines = [
        machine.summary(result["machine"], packages=("keras", "tensorflow", "ai-edge-litert",
                                                     "onnxruntime")),
        f"load average {result['load_average_at_start']} at start; {settings['clients']} clients, "
        f"{settings['instances_per_request']} instance(s) per request, {settings['seconds']:g} s "
        f"per model in {settings['rounds']} round(s) taking turns with direct calls, cache off",
        "",
        "| model | format | requests | errors | p50 ms | p99 ms | served instances/s | mean batch "
        "| direct best (batch) | served / direct |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in result["models"].items():
        best = row["direct"]
        lines.append(f"| {name} | {row['format']} | {row['requests']} | {row['errors']} | {row['p50_ms']} "
                     f"| {row['p99_ms']} | {row['instances_per_s']} | {row['mean_batch_size']} "
                     f"| {best['best_examples_per_s']}/s ({best['best_batch_size']}) "
                     f"| {row['served_vs_direct']:.2f} |")
    rss = result["server_rss_mib"]
    lines += ["", f"server RSS: {rss['start']} MiB after warm-up, {rss['end']} MiB at the end; "
              f"exit code after SIGTERM: {result['server_exit_code_after_sigterm']}"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
