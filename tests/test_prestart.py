"""tests/prestart.py: command runs forked from a prestarted interpreter behave as fresh ones."""

import os
import signal
import subprocess
import sys
import time

import prestart
import pytest
from support import ROOT

BAD_KEY = ["--recipe", "mlp_churn", "--set", "train.nope=1"]


@pytest.mark.parametrize(("module", "args", "env", "expected"), [
    ("dlkeras.train", ["--recipe", "lstm_sales"], {}, "jax"),  # the recipe's preference
    ("dlkeras.train", ["--recipe", "mlp_churn"], {}, "tensorflow"),
    ("dlkeras.train", ["--recipe", "lstm_sales"], {"KERAS_BACKEND": "torch"}, "torch"),
    ("dlkeras.export", ["--run", "x"], {"KERAS_BACKEND": "jax"}, "tensorflow"),  # export's own
    ("dlkeras.predict", ["x"], {}, "tensorflow"),
    ("dlkeras.train", ["--recipe", "mine.toml"], {}, None),  # known only once it runs
    ("dlkeras.train", ["--recipe", "mlp_churn", "--set", "backend=jax"], {}, None),
    ("dlkeras.train", [], {}, None),
    # a train launcher: JAX (its default and its workers'); on another backend it refuses at once
    ("dlkeras.train", ["--recipe", "mlp_churn", "--workers", "2"], {}, "jax"),
    ("dlkeras.train", ["--recipe", "mlp_churn", "--workers", "2"], {"KERAS_BACKEND": "torch"}, None),
    ("dlkeras.tune", ["--recipe", "mlp_churn", "--workers", "2"], {}, "tensorflow"),
    ("evil_layers", [], {}, None),
])
def test_backend_of_is_the_backend_a_fresh_interpreter_would_load(module, args, env, expected):
    assert prestart.backend_of(module, args, env) == expected


def test_a_forked_command_exits_and_reports_as_a_fresh_one(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    argv = [sys.executable, "-m", "dlkeras.train", *BAD_KEY]
    process = prestart.popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert isinstance(process, prestart.Forked), "no server took the command"
    forked = process.communicate(timeout=120)
    fresh = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert process.returncode == fresh.returncode == 2
    assert forked[1].strip().splitlines()[-1] == fresh.stderr.strip().splitlines()[-1]
    assert "unknown key 'train.nope'" in forked[1]


def test_a_forked_command_has_its_own_process_group_and_dies_by_its_signal(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    argv = [sys.executable, "-m", "dlkeras.train", "--recipe", "mlp_churn", "--out", str(tmp_path),
            "--set", "train.epochs=500", "--set", "callbacks.early_stopping_patience=0"]
    process = prestart.popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    assert isinstance(process, prestart.Forked)
    try:
        assert os.getpgid(process.pid) == process.pid != os.getpgid(0)
        deadline = time.monotonic() + 120
        while not (tmp_path / "latest").exists():  # it started, in its own working folder
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL


@pytest.mark.parametrize(("argv", "expected"), [
    (["-m", "dlkeras.train", "--recipe", "x"], ({"module": "dlkeras.train"}, ["--recipe", "x"])),
    (["-c", "print(1)", "a"], ({"code": "print(1)"}, ["a"])),
    (["tests/script.py", "a"], ({"script": "tests/script.py"}, ["a"])),
    (["-m"], None),
    (["-X", "importtime", "-m", "dlkeras.train"], None),  # interpreter options: fresh
])
def test_program_of_reads_the_interpreter_command_line(argv, expected):
    assert prestart.program_of([sys.executable, *argv]) == expected
    assert prestart.program_of(["python3", *argv]) is None  # another interpreter


# what a program sees of how it was started: its name, arguments, first path entry and folder
SHOW = "import os, sys; print(__name__, sys.argv, repr(sys.path[0]), os.getcwd()); sys.exit(3)"


def test_code_and_scripts_run_in_a_fork_as_in_a_fresh_interpreter(tmp_path):
    script = tmp_path / "show.py"
    script.write_text(SHOW + "\n")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    for argv in ([sys.executable, "-c", SHOW, "one", "two"], [sys.executable, "show.py", "one"]):
        process = prestart.popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
        assert isinstance(process, prestart.Forked), "no server took the command"
        forked, _ = process.communicate(timeout=120)
        fresh = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True,
                               timeout=120)
        assert process.returncode == fresh.returncode == 3
        assert forked == fresh.stdout and forked.startswith("__main__ [")
    no_backend = {k: v for k, v in env.items() if k != "KERAS_BACKEND"}  # known once it runs
    assert prestart.fork([sys.executable, "-c", SHOW], env=no_backend, cwd=tmp_path) is None


def test_a_fork_placed_as_a_launchers_worker_joins_its_group_and_ends_with_it(tmp_path):
    """What `_sibling_popen` asks for a `--workers` launcher's worker: the launcher's process
    group (a killpg of the launcher reaches it) and SIGTERM once the launcher has ended."""
    launcher = subprocess.Popen(["sleep", "120"], process_group=0)
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    try:
        worker = prestart.fork([sys.executable, "-c", "import time; time.sleep(120)"], env=env,
                               cwd=tmp_path, placement={"pgid": launcher.pid, "parent": launcher.pid})
        assert isinstance(worker, prestart.Forked), "no server took the command"
        assert os.getpgid(worker.pid) == launcher.pid
        assert worker.poll() is None
    finally:
        launcher.kill()
        launcher.wait()
    assert worker.wait(timeout=30) == -signal.SIGTERM


def test_a_shared_server_is_waited_for_until_ready_and_given_up_once_ended(tmp_path):
    address = str(tmp_path / "tensorflow.sock")
    ended = subprocess.Popen(["true"])
    ended.wait()
    assert prestart._wait_ready(address, ended.pid) is None  # no wait for a server that is gone
    running = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / "tensorflow.sock.ready").touch()
        assert prestart._wait_ready(address, running.pid) == address
    finally:
        running.kill()
        running.wait()


@pytest.mark.skipif(not os.environ.get(prestart.SHARED), reason="only under make test's workers")
def test_under_xdist_commands_fork_from_the_servers_the_controller_started(tmp_path):
    import json

    shared_pid = json.loads(os.environ[prestart.SHARED])["tensorflow"][1]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    process = prestart.popen([sys.executable, "-c", "import os; print(os.getppid())"], env=env,
                             cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    assert isinstance(process, prestart.Forked), "no server took the command"
    out, _ = process.communicate(timeout=120)
    assert int(out) == shared_pid


def test_a_client_that_leaves_before_asking_does_not_stop_the_server(tmp_path):
    import socket

    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    address = prestart.SERVERS.address("tensorflow")
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as gone:
        gone.connect(address)
        gone.send(b"")  # an empty request, then nothing more
    process = prestart.popen([sys.executable, "-c", "print('still here')"], env=env, cwd=tmp_path,
                             stdout=subprocess.PIPE, text=True)
    assert isinstance(process, prestart.Forked), "the server stopped"
    assert process.communicate(timeout=120)[0] == "still here\n"
