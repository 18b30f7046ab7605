"""Local worker processes for the commands' `--workers N`: start, watch, stop together.

One process's output (the chief's, or the first worker's) passes through to the terminal; the
others write to log files in a temporary folder whose tail is shown when one fails. When any
process fails, or the user interrupts, the others are stopped: a cluster that lost a member
would otherwise wait for it forever.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

LOG_TAIL_LINES = 30


@dataclass(frozen=True)
class Worker:
    """One process to start: a name for messages, its command line and its extra environment."""

    name: str
    argv: tuple[str, ...]
    env: dict = field(default_factory=dict)


def free_port() -> int:
    """A TCP port on the loopback address that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def module_command(module: str, args) -> tuple[str, ...]:
    """`python -m module args` with this interpreter."""
    return (sys.executable, "-m", module, *args)


def launch(workers: list[Worker], shown: int = 0, poll_seconds: float = 0.2) -> int:
    """Runs `workers` side by side until all end; returns 0 or the first failure's status.

    Args:
        shown: the index of the worker whose output passes through.
    """
    with tempfile.TemporaryDirectory(prefix="dlkeras-workers-") as folder:
        logs, processes = {}, []
        try:
            for index, worker in enumerate(workers):
                output = None
                if index != shown:
                    logs[index] = Path(folder) / f"{index}.log"
                    output = open(logs[index], "w", encoding="utf-8")  # noqa: SIM115
                processes.append(subprocess.Popen(
                    worker.argv, env={**os.environ, **worker.env}, stdout=output,
                    stderr=subprocess.STDOUT if output else None, preexec_fn=_die_with_parent))
                if output:
                    output.close()
            return _wait(workers, processes, logs, poll_seconds)
        except KeyboardInterrupt:
            print("interrupted: stopping every worker", file=sys.stderr, flush=True)
            _stop(processes)
            return 130


def _wait(workers, processes, logs, poll_seconds: float) -> int:
    while True:
        codes = [process.poll() for process in processes]
        failed = [i for i, code in enumerate(codes) if code not in (None, 0)]
        if failed:
            index = failed[0]
            _stop(processes)
            print(f"error: {workers[index].name} ended with exit status {codes[index]}; the "
                  "other workers were stopped", file=sys.stderr, flush=True)
            if index in logs:
                tail = logs[index].read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
                print("\n".join(f"  [{workers[index].name}] {line}" for line in tail),
                      file=sys.stderr, flush=True)
            return codes[index]
        if all(code == 0 for code in codes):
            return 0
        time.sleep(poll_seconds)


def _die_with_parent() -> None:
    """Linux: the worker gets SIGTERM when the launcher dies, even by SIGKILL (no orphans)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop(processes, grace_seconds: float = 10.0) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
