"""A search spread over processes or hosts: KerasTuner's chief, its workers, the local launcher.

KerasTuner serves a search's oracle (the trial budget, the values proposed, the finished
scores) from one chief process over gRPC; worker processes ask it for a trial, train it and
report the score. Every process of `python -m dlkeras.tune` takes one role:

    one process  no KERASTUNER_* variables, no --workers: the search and its trials here
    launcher     --workers N: creates (or with --resume finds) the search directory, then
                 starts a chief and N workers on this machine with --resume <that directory>
    chief        KERASTUNER_TUNER_ID=chief: serves the oracle, runs no trial, and once every
                 trial has ended writes the report (trials.csv, best_recipe.toml, ...; with
                 --compare-defaults it first trains the recipe's own settings once)
    worker       KERASTUNER_TUNER_ID=tuner0, tuner1, ...: runs trials (tune.trials_per_process
                 as in one process) and writes each trial's record, never the report

A search on several hosts needs one search directory that every host reads and writes at the
same path (a shared file system), the same arguments everywhere, and per host:

    KERASTUNER_ORACLE_IP    the chief's address (the chief listens on it)
    KERASTUNER_ORACLE_PORT  a port free on the chief's host
    KERASTUNER_TUNER_ID     chief on one host; tuner0, tuner1, ... (unique) on the others

Start the chief first (with --resume DIR to continue a search, else it creates one and prints
its directory), then each worker with --resume <that directory>:

    KERASTUNER_TUNER_ID=chief KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 \\
        python -m dlkeras.tune --recipe mlp_churn --tuner random --trials 40 --out /shared/runs
    KERASTUNER_TUNER_ID=tuner0 KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 \\
        python -m dlkeras.tune --recipe mlp_churn --tuner random --trials 40 --out /shared/runs \\
        --resume /shared/runs/mlp_churn-tune-20250101-120000

The oracle hands each trial to one worker (a worker restarted with the same id gets its
unfinished trial back) and keeps every trial's state in search_dir/tuner. A chief restarted
with --resume reloads it and hands the trials that were running when it stopped to the
workers again, with their values: finished trials are kept, none runs twice. A search needs
its chief until the end: workers wait for a chief that is not (yet) listening, for up to an
hour, unless the search has ended. `--workers N` stops every process when one fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from dlkeras.engine.workers import Worker, free_port, launch, module_command
from dlkeras.errors import ConfigError, RunError
from dlkeras.runs import SearchDir

TUNER_ID, ORACLE_IP, ORACLE_PORT = "KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"
LOOPBACK = "127.0.0.1"
CHIEF_WAIT_SECONDS = 3600  # as long as KerasTuner's own client waits for the chief

ONE_PROCESS, LAUNCHER, CHIEF, WORKER = "one process", "launcher", "chief", "worker"


def role(workers: int, resume: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """This process's role, from `--workers`, `--resume` and the KERASTUNER_* variables.

    Raises:
        ConfigError: a negative --workers, some but not all KERASTUNER_* variables, a port that
            is not a number, --workers in a process that already is a chief or worker, or a
            worker without --resume.
    """
    if workers < 0:
        raise ConfigError(f"--workers {workers}: pass 0 to search in this process, or the number "
                          "of worker processes to start (1 or more)")
    present = [name for name in (TUNER_ID, ORACLE_IP, ORACLE_PORT) if name in environ]
    if not present:
        return LAUNCHER if workers else ONE_PROCESS
    tuner_id = environ.get(TUNER_ID, "")
    if workers:
        raise ConfigError(f"--workers {workers} starts its own chief and workers, but this process "
                          f"already is one ({', '.join(f'{n}={environ[n]}' for n in present)}): "
                          "drop --workers, or unset the KERASTUNER_* variables")
    missing = [name for name in (TUNER_ID, ORACLE_IP, ORACLE_PORT) if name not in present]
    if missing:
        raise ConfigError(f"{', '.join(present)} set but not {', '.join(missing)}: a distributed "
                          "search needs all three on every host (see python -m dlkeras.tune --help)")
    port = environ[ORACLE_PORT]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{ORACLE_PORT}={port!r} is not a port number (1-65535)")
    # KerasTuner's rule (keras_tuner distribute.utils.is_chief_oracle), without importing it
    if "chief" in tuner_id:
        return CHIEF
    if not resume:
        raise ConfigError(f"{TUNER_ID}={tuner_id} is a worker: it joins the chief's search, so "
                          "pass --resume SEARCH_DIR (the directory the chief printed)")
    return WORKER


def run_search(tuner, role: str, search_dir: SearchDir, trials: int,
               announce: Callable[[str], None]) -> None:
    """`tuner.search` as this process's role has it.

    KerasTuner's chief serves the oracle in `search` and returns once every trial has ended;
    it is not started when the reloaded oracle has nothing left, since no worker would ask
    (and so end it). A worker joins only a chief that listens.

    Args:
        announce: for a chief, called with each trial's id as the trial ends.

    Raises:
        RunError: the chief cannot listen at its address.
    """
    if role == WORKER and not wait_for_chief(search_dir, trials):
        print("the search has ended: no trial left to run", flush=True)
        return
    if role != CHIEF:
        tuner.search(verbose=0)
        return
    if search_finished(tuner.oracle.get_state(), trials):
        print("every trial of the search has ended", flush=True)
        return
    address = f"{os.environ[ORACLE_IP]}:{os.environ[ORACLE_PORT]}"
    print(f"serving the search's trials to its workers at {address}", flush=True)
    try:
        with announce_ended_trials(tuner.oracle, announce):
            serve_trials(tuner, address)
    except RuntimeError as error:  # grpc: "Failed to bind to address ..."
        if "bind" not in str(error).lower():
            raise
        raise RunError(f"the chief cannot listen at {address} ({error}); set {ORACLE_PORT} to "
                       "a free port of this host") from None
    tuner.save()  # the oracle's last save still counted the trial that ended last as running


def launch_search(arguments: list[str], workers: int) -> int:
    """Runs a chief and `workers` workers of `python -m dlkeras.tune arguments` on this machine.

    The chief's output (each trial as it ends, then the report) passes through.

    Returns:
        0, or the exit status of the first process that failed (the others are then stopped).
    """
    address = {ORACLE_IP: LOOPBACK, ORACLE_PORT: str(free_port())}
    command = module_command("dlkeras.tune", arguments)
    team = [Worker("chief", command, {**address, TUNER_ID: "chief"})]
    team += [Worker(f"tuner{i}", command, {**address, TUNER_ID: f"tuner{i}"}) for i in range(workers)]
    print(f"starting a chief and {workers} worker{'s' * (workers > 1)} "
          f"({address[ORACLE_IP]}:{address[ORACLE_PORT]})", flush=True)
    return launch(team, shown=0)


def oracle_file(search_dir: SearchDir) -> Path:
    """KerasTuner's oracle state (trial order, running trials, retries) in the search."""
    return search_dir.tuner_dir / "oracle.json"


def search_finished(oracle_state: dict, trials: int) -> bool:
    """Whether every trial of the budget has started and ended, from the oracle's state.

    A trial enters `end_order` once it has ended for good (not to be retried). Running
    trials (`ongoing_trials`) are not consulted: the oracle saves its state before it lets go
    of a trial that ended.
    """
    started = oracle_state.get("start_order", [])
    return len(started) >= trials and set(started) <= set(oracle_state.get("end_order", []))


def wait_for_chief(search_dir: SearchDir, trials: int, environ: Mapping[str, str] = os.environ,
                   poll_seconds: float = 1.0, limit_seconds: float = CHIEF_WAIT_SECONDS) -> bool:
    """Waits until the chief listens; False when the search ended already (nothing to join).

    KerasTuner's client would wait an hour for a chief that has already served every trial
    and gone, as when this worker started after the others ran the whole budget.

    Raises:
        RunError: no chief listened within `limit_seconds`.
    """
    address = (environ[ORACLE_IP], int(environ[ORACLE_PORT]))
    deadline = time.monotonic() + limit_seconds
    while True:
        try:
            with socket.create_connection(address, timeout=poll_seconds):
                return True
        except OSError:
            pass
        try:  # KerasTuner rewrites the file in place: a partial read means "not yet"
            if search_finished(json.loads(oracle_file(search_dir).read_text()), trials):
                return False
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise RunError(f"no chief listened at {address[0]}:{address[1]} for "
                           f"{limit_seconds / 60:.0f} minutes; start one with {TUNER_ID}=chief "
                           f"and the same {ORACLE_IP}/{ORACLE_PORT}")
        time.sleep(poll_seconds)


CHIEF_CHECK_SECONDS = 1.0  # between the chief's checks for the end of the search


def serve_trials(tuner, address: str, check_seconds: float = CHIEF_CHECK_SECONDS) -> None:
    """The chief's `tuner.search`: serves the oracle to the workers at `address` until one has
    been told that no trial is left and none has a trial running or is still asking.

    KerasTuner's own chief (`oracle_chief.start_server`) checks for that end only every 20 s
    once a worker was told: a search whose workers ended their last trials a moment apart
    ended up to 20 s after them (a 4-trial search of tests/tune/test_distributed_search.py:
    29.3 and 29.5 s in two runs of three, 10.1 s in the third). This one checks every
    `check_seconds`, with KerasTuner's servicer and end condition.

    Raises:
        RuntimeError: grpc cannot listen at `address`.
    """
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    tuner.oracle.verbose = 0
    tuner.save()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(tuner.oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    server.add_insecure_port(address)
    server.start()
    while True:
        time.sleep(check_seconds)
        if servicer.stop_triggered and oracle_chief.exit_chief(tuner.oracle):
            break


@contextlib.contextmanager
def announce_ended_trials(oracle, announce: Callable[[str], None], poll_seconds: float = 1.0):
    """While the chief serves (its search blocks), calls `announce(trial_id)` as trials end."""
    seen = len(oracle.end_order)
    stop = threading.Event()

    def announce_new() -> None:
        nonlocal seen
        ended = list(oracle.end_order)  # appended by the oracle's server thread
        for trial_id in ended[seen:]:
            announce(trial_id)
        seen = len(ended)

    def watch() -> None:
        while not stop.wait(poll_seconds):
            announce_new()

    thread = threading.Thread(target=watch, name="announce-trials", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        announce_new()
