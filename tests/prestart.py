"""Prestarted interpreters for the suite's command runs.

A fresh `python -m dlkeras.train` spends 7-9 s of CPU importing TensorFlow, Keras and their
libraries before it reads its first argument, and the suite starts about a hundred of them.
Here one server per backend (per pytest process, or per run under pytest-xdist, below) imports
them once; each command then runs in a fork of it: its own process, with its own pid, process
group, working folder, environment, arguments, stdin, stdout and stderr, exit status and
signals, running the module's `__main__` code as `python -m` would (or, for `python -c CODE`
and `python SCRIPT.py`, the code or the script as `__main__`). What a fork cannot show is what
happens while those libraries load (start-up notices, what a command imports): the tests of
that (tests/test_quiet_start.py, tests/test_cli.py, the `-c` import checks) start fresh
interpreters.

A command goes to a server only when the backend a fresh interpreter would choose is known
before it starts (`backend_of`; for code and scripts, only from KERAS_BACKEND); anything else,
or any failure to reach a server, starts a fresh interpreter. DLKERAS_TEST_PRESTART=0 turns the
servers off.

A `--workers N` launcher forked from a server starts its worker processes as forks of the same
server too (`_sibling_popen`): each worker joins the launcher's process group (a `killpg` of the
launcher reaches them, as with fresh workers) and gets SIGTERM when the launcher dies (as the
launcher's `_die_with_parent` does for fresh ones).

Under pytest-xdist the controller starts one server per backend before its workers start
(`start_shared`, from tests/conftest.py), and every worker forks from those: a server costs 4-6 s
of CPU to start, once per run instead of once per worker.

Forks share the server's hash seed and NumPy's global random state; the interpreter's own
`random` reseeds in each fork.

Run as a script, this file is the server: `python tests/prestart.py SOCKET` with KERAS_BACKEND
set; it prints "ready" once the libraries are loaded and ends when its stdin closes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("tensorflow", "jax", "torch")
VARIABLE = "DLKERAS_TEST_PRESTART"
# commands that fix their backend whatever KERAS_BACKEND says (their conversions run on a
# TensorFlow reload)
TENSORFLOW_ALWAYS = ("dlkeras.export",)
# commands whose backend is KERAS_BACKEND, else TensorFlow, whatever the recipe prefers
TENSORFLOW_DEFAULT = ("dlkeras.predict", "dlkeras.serve", "dlkeras.prune")
# commands that take `--recipe` and start on the recipe's preferred backend (`select_backend`)
RECIPE_COMMANDS = ("dlkeras.train", "dlkeras.tune", "dlkeras.check")
# A `--workers` launcher imports no backend itself; forked, it saves its workers the import
# (`_sibling_popen`). A `dlkeras.train --workers` launcher on any backend but JAX refuses at
# once, before any worker starts: it starts fresh (0.25 s), not a server for nothing (6-9 s).
WORKERS = "--workers"
MULTI_WORKER_TRAIN_BACKENDS = ("jax",)
MESSAGE_BYTES = 1 << 20
# {backend: [socket address, server pid]} of the servers the xdist controller started
SHARED = "DLKERAS_TEST_PRESTART_SHARED"
GC_FREEZE = "DLKERAS_TEST_GC_FREEZE"  # "0": no frozen garbage in the servers or the workers
SHARED_WAIT_SECONDS = 300  # for a shared server to be ready (it imports under the workers' load)


def backend_of(module: str, args, env: dict) -> str | None:
    """The backend a fresh `python -m MODULE ARGS` with `env` would load; None when that is only
    known once it runs (a TOML recipe, a `--set backend=...`, an unknown module), and for a
    `dlkeras.train --workers` launcher on a backend other than JAX (it refuses at once)."""
    if module == "dlkeras.train" and WORKERS in map(str, args):
        backend = env.get("KERAS_BACKEND", "jax")  # the launcher's, which its workers get
        return backend if backend in MULTI_WORKER_TRAIN_BACKENDS else None
    if module in TENSORFLOW_ALWAYS:
        return "tensorflow"
    if env.get("KERAS_BACKEND"):
        return env["KERAS_BACKEND"] if env["KERAS_BACKEND"] in BACKENDS else None
    if module in TENSORFLOW_DEFAULT:
        return "tensorflow"
    if module not in RECIPE_COMMANDS:
        return None
    args = [str(a) for a in args]
    if any(a.startswith("backend=") for a in args) or "--recipe" not in args[:-1]:
        return None
    from dlkeras.recipes import RECIPES

    name = args[args.index("--recipe") + 1]
    if name not in RECIPES:
        return None
    from dlkeras import config

    return config.load_recipe(name).backend or "tensorflow"


def program_of(argv) -> tuple[dict, list[str]] | None:
    """`[sys.executable, "-m", MODULE | "-c", CODE | SCRIPT, *args]` as ({"module": MODULE} |
    {"code": CODE} | {"script": SCRIPT}, args); None for any other command line (another
    interpreter, interpreter options)."""
    argv = [str(a) for a in argv]
    if len(argv) < 2 or argv[0] != sys.executable:
        return None
    if argv[1] in ("-m", "-c"):
        return ({"module" if argv[1] == "-m" else "code": argv[2]}, argv[3:]) if len(argv) > 2 else None
    if argv[1].endswith(".py") and not argv[1].startswith("-"):
        return {"script": argv[1]}, argv[2:]
    return None


def program_backend(program: dict, args, env: dict) -> str | None:
    """`backend_of` for a module; for code or a script, KERAS_BACKEND when it names a backend
    (what they import is known only once they run)."""
    if "module" in program:
        return backend_of(program["module"], args, env)
    if WORKERS in map(str, args):
        return None
    return env.get("KERAS_BACKEND") if env.get("KERAS_BACKEND") in BACKENDS else None


class Forked:
    """A command running in a fork of a server, with the parts of `subprocess.Popen` the tests
    use: pid, returncode, poll, wait, send_signal, kill, terminate, stdout and stderr (when
    PIPE); stdin is always None (the fork reads /dev/null)."""

    def __init__(self, args, connection: socket.socket, pid: int, stdout=None, stderr=None):
        self.args, self.pid, self.stdout, self.stderr = args, pid, stdout, stderr
        self.stdin = None
        self.returncode = None
        self._connection = connection

    def _read_status(self, timeout: float | None) -> bool:
        import select

        if not select.select([self._connection], [], [], timeout)[0]:
            return False
        try:
            message = self._connection.recv(MESSAGE_BYTES)
        except OSError:
            message = b""
        # the server reports "exit STATUS"; a server gone without reporting counts as killed
        self.returncode = int(message.split()[1]) if message.startswith(b"exit ") else -signal.SIGKILL
        self._connection.close()
        return True

    def poll(self):
        if self.returncode is None:
            self._read_status(0)
        return self.returncode

    def wait(self, timeout: float | None = None):
        if self.returncode is None and not self._read_status(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def send_signal(self, number: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, number)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def communicate(self, timeout: float | None = None):
        """(stdout, stderr), each read to its end, once the command exited."""
        streams = [self.stdout, self.stderr]
        read = [None, None]

        def drain(index):
            read[index] = streams[index].read()

        readers = [threading.Thread(target=drain, args=(index,), daemon=True)
                   for index, stream in enumerate(streams) if stream is not None]
        deadline = None if timeout is None else time.monotonic() + timeout
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(None if deadline is None else max(deadline - time.monotonic(), 0))
        if any(reader.is_alive() for reader in readers):
            self.kill()
            self.wait()
            raise subprocess.TimeoutExpired(self.args, timeout)
        self.wait(None if deadline is None else max(deadline - time.monotonic(), 0))
        for stream in streams:
            if stream is not None:
                stream.close()
        return read[0], read[1]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for stream in (self.stdout, self.stderr):
            if stream is not None:
                stream.close()
        self.wait()


class Servers:
    """backend -> its server, started on first use and stopped when this process exits."""

    def __init__(self):
        self._servers, self._lock = {}, threading.Lock()

    def start(self, program: dict, args, env: dict, cwd, stdout=None, stderr=None, text=False,
              placement: dict | None = None):
        """`program` (`program_of`) run in a fork with `args`, `env` and `cwd` (and `placement`,
        see `fork`); a `Forked`, or None when no server takes it (the caller starts a fresh
        interpreter)."""
        if os.environ.get(VARIABLE) == "0":
            return None
        backend = program_backend(program, args, env)
        address = backend and self.address(backend)
        if address is None:
            return None
        return request_fork(address, {**program, "args": [str(a) for a in args], "env": env,
                                      "cwd": str(cwd), **(placement or {})}, stdout, stderr, text)

    def address(self, backend: str) -> str | None:
        """The socket of the server of `backend` (started here, or shared by the xdist
        controller); None when none could start."""
        with self._lock:
            if backend not in self._servers:
                shared = json.loads(os.environ.get(SHARED) or "{}").get(backend)
                address = shared and _wait_ready(*shared)
                self._servers[backend] = (None, address) if address else self._launch(backend)
            server = self._servers[backend]
        return server and server[1]

    def _launch(self, backend: str):
        server, address = spawn(backend, os.environ)
        if server.stdout.readline().strip() != b"ready":
            return None
        return server, address


def spawn(backend: str, environ) -> tuple[subprocess.Popen, str]:
    """A server of `backend` starting (it prints "ready" once it listens), with `environ`;
    stopped when this process exits."""
    import atexit
    import tempfile

    folder = tempfile.mkdtemp(prefix="dlkeras-prestart-")
    address = os.path.join(folder, f"{backend}.sock")
    env = {**environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    server = subprocess.Popen([sys.executable, __file__, address], cwd=ROOT, env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
    atexit.register(_stop, server, folder)
    return server, address


def start_shared(workers_environ: dict) -> None:
    """In pytest-xdist's controller: starts a server per backend now, without waiting, with the
    environment its workers will have (`workers_environ`: the thread settings of
    `support.share_cores`, which torch reads once, at import), and names them in SHARED for
    the workers, which inherit it. Nothing when DLKERAS_TEST_PRESTART=0, or when SHARED names
    servers already (a pytest run inside a test of this one uses the enclosing run's)."""
    if os.environ.get(VARIABLE) == "0" or os.environ.get(SHARED):
        return
    shared = {}
    for backend in BACKENDS:
        server, address = spawn(backend, workers_environ)
        shared[backend] = [address, server.pid]
    os.environ[SHARED] = json.dumps(shared)


def _wait_ready(address: str, pid: int) -> str | None:
    """`address` once its server listens (it marks that with ADDRESS.ready); None when the
    server has ended or is not ready in SHARED_WAIT_SECONDS (the worker then starts its own)."""
    deadline = time.monotonic() + SHARED_WAIT_SECONDS
    while not os.path.exists(f"{address}.ready"):
        if not _alive(pid) or time.monotonic() > deadline:
            return None
        time.sleep(0.1)
    return address


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (an ended child of another process stays a zombie until
    that process reaps it: not alive)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def request_fork(address: str, request: dict, stdout=None, stderr=None, text=False):
    """Asks the server at `address` to fork and run `request` (program, args, env, cwd; and
    "pgid", "parent" for `_sibling_popen`) with these streams, as `subprocess.Popen` takes them;
    a `Forked`, or None when the server cannot be reached."""
    ends, ours = [], {}
    with open(os.devnull, "rb") as null_in, open(os.devnull, "wb") as null_out:
        for name, wanted in (("stdout", stdout), ("stderr", stderr)):
            if wanted == subprocess.PIPE:
                read, write = os.pipe()
                ours[name] = read
                ends.append(write)
            elif wanted == subprocess.DEVNULL:
                ends.append(os.dup(null_out.fileno()))
            elif wanted == subprocess.STDOUT:  # stderr into stdout's pipe or file
                ends.append(os.dup(ends[0]))
            elif wanted is None:  # inherited, as subprocess does
                ends.append(os.dup(1 if name == "stdout" else 2))
            else:
                ends.append(os.dup(wanted.fileno()))
        ends.insert(0, os.dup(null_in.fileno()))
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        connection.connect(address)
        socket.send_fds(connection, [json.dumps(request).encode()], ends)
        pid = int(connection.recv(MESSAGE_BYTES).split()[1])
    except (OSError, ValueError, IndexError):
        connection.close()
        for fd in ours.values():
            os.close(fd)
        return None
    finally:
        for fd in ends:
            os.close(fd)
    streams = {name: os.fdopen(fd, "r" if text else "rb") for name, fd in ours.items()}
    name = next(value for key, value in request.items() if key in ("module", "code", "script"))
    return Forked([name, *request["args"]], connection, pid, streams.get("stdout"),
                  streams.get("stderr"))


SERVERS = Servers()
POPEN_OPTIONS = {"env", "stdout", "stderr", "text", "cwd", "start_new_session"}


def fork(argv, env=None, cwd=None, stdout=None, stderr=None, text=False,
         placement: dict | None = None) -> Forked | None:
    """`argv` (see `program_of`) in a fork of a prestarted server, in a process group of its own
    (so that `os.killpg(process.pid, ...)` reaches it as with start_new_session=True); None when
    no server takes it.

    Args:
        placement: {"pgid": the process group to join instead (one of this session's),
            "parent": a pid whose end sends the fork SIGTERM}, as `_sibling_popen` places a
            launcher's workers.
    """
    parsed = program_of(argv)
    if parsed is None:
        return None
    return SERVERS.start(*parsed, dict(env or os.environ), cwd or os.getcwd(), stdout, stderr, text,
                         placement)


def popen(argv, **options):
    """`subprocess.Popen(argv, **options)`; with only POPEN_OPTIONS, `fork` when a server takes
    the command."""
    argv = [str(a) for a in argv]
    if set(options) <= POPEN_OPTIONS:
        process = fork(argv, **{k: v for k, v in options.items() if k != "start_new_session"})
        if process is not None:
            return process
    return subprocess.Popen(argv, **options)


def run(argv, capture_output=False, timeout=None, check=False, **options):
    """`subprocess.run` through `popen`."""
    if capture_output:
        options.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process = popen(argv, **options)
    if isinstance(process, Forked):
        out, err = process.communicate(timeout)
    else:
        with process:
            try:
                out, err = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise
    result = subprocess.CompletedProcess(argv, process.returncode, out, err)
    if check:
        result.check_returncode()
    return result


def _stop(server: subprocess.Popen, folder: str) -> None:
    import shutil

    server.stdin.close()  # the server ends when its stdin closes
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
    shutil.rmtree(folder, ignore_errors=True)


_REAL_POPEN = subprocess.Popen
THIS_SERVER: tuple[str, str] | None = None  # (address, backend) of the server this process is, or forked from


def _sibling_popen(argv, **options):
    """`subprocess.Popen` in a forked `--workers` launcher: a command of the server's backend
    (a worker) runs as a fork of the same server, in the launcher's process group, and gets
    SIGTERM when the launcher ends (the launcher's preexec_fn, `_die_with_parent`, asks for that
    of a fresh worker); anything else, or a server that does not answer, runs as Popen would."""
    parsed = program_of(argv)
    if parsed is not None and set(options) <= {"env", "stdout", "stderr", "cwd", "preexec_fn"}:
        program, args = parsed
        env = dict(options.get("env") or os.environ)
        if program_backend(program, args, env) == THIS_SERVER[1]:
            process = request_fork(THIS_SERVER[0], {
                **program, "args": args, "env": env, "cwd": str(options.get("cwd") or os.getcwd()),
                "pgid": os.getpgid(0), "parent": os.getpid(),
            }, options.get("stdout"), options.get("stderr"))
            if process is not None:
                return process
    return _REAL_POPEN(argv, **options)


def _watch_parent(pid: int) -> None:
    """SIGTERM to this process once process `pid` has ended (at once if it already has)."""
    import select

    try:
        handle = os.pidfd_open(pid)
    except OSError:
        os.kill(os.getpid(), signal.SIGTERM)
        return

    def watch():
        select.select([handle], [], [])
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent watch", daemon=True).start()


def serve(address: str) -> None:
    """Loads the libraries, then forks a command per request until stdin closes."""
    import selectors

    import keras  # noqa: F401  the backend of KERAS_BACKEND
    import tensorflow  # noqa: F401  tf.data feeds every backend

    import dlkeras.train  # noqa: F401

    # the libraries' objects, out of every fork's garbage collections: a full collection in a
    # fork (TensorFlow's TFLite converter, `clear_session`) walks only the fork's own objects,
    # and the pages that hold the libraries' objects stay shared (bench/test_gc.py)
    freeze_survivors()

    global THIS_SERVER
    THIS_SERVER = (address, os.environ["KERAS_BACKEND"])
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(address)
    listener.listen(64)
    with open(f"{address}.ready", "w"):  # for workers that did not start it (`_wait_ready`)
        pass
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, socket.socket] = {}
    selector = selectors.DefaultSelector()
    for source in (listener, wake_read, sys.stdin.buffer):
        selector.register(source, selectors.EVENT_READ)
    print("ready", flush=True)
    while True:
        for key, _ in selector.select(timeout=1.0):
            if key.fileobj is sys.stdin.buffer:
                if not os.read(sys.stdin.fileno(), 4096):
                    return
            elif key.fileobj is listener:
                connection, _ = listener.accept()
                message, fds, _, _ = socket.recv_fds(connection, MESSAGE_BYTES, 3)
                try:
                    request = json.loads(message)
                except ValueError:  # a client gone before it asked: nothing to run
                    for fd in fds:
                        os.close(fd)
                    connection.close()
                    continue
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    _run_child(request, fds, [listener, connection, *children.values()],
                               (wake_read, wake_write))
                try:  # its process group before the test learns its pid (the child too)
                    os.setpgid(pid, request.get("pgid", pid))
                except OSError:  # it did so itself, or has already ended
                    pass
                for fd in fds:
                    os.close(fd)
                children[pid] = connection
                connection.send(f"pid {pid}".encode())
            else:
                os.read(wake_read, 4096)
        _reap(children)


def freeze_survivors() -> None:
    """Collects the garbage, then moves every object still alive out of the garbage collector's
    reach (`gc.freeze`), unless DLKERAS_TEST_GC_FREEZE=0: a full collection otherwise walks
    every object the process has kept (imports, the smoke runs' models, traced graphs), and
    TensorFlow's TFLite converter and `keras.backend.clear_session` each run one
    (`bench/test_gc.py`). A frozen object is still freed when nothing refers to it; only a
    reference cycle of frozen objects lives on until the process ends. The servers run it once
    their libraries are loaded, tests/conftest.py's workers after collection and each test."""
    if os.environ.get(GC_FREEZE, "1") != "0":
        import gc

        gc.collect()
        gc.freeze()


def _reap(children: dict) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        connection = children.pop(pid, None)
        if connection is not None:
            try:
                connection.send(f"exit {os.waitstatus_to_exitcode(status)}".encode())
            except OSError:  # the test is gone
                pass
            connection.close()


def _run_child(request: dict, fds, sockets, wake_fds) -> None:
    """In the fork: becomes `python -m MODULE ARGS` (`-c CODE ARGS`, `SCRIPT ARGS`) in its own
    process group (or the request's "pgid"); never returns. A `--workers` launcher starts its
    workers as forks of this server too (`_sibling_popen`)."""
    import traceback

    status = 1
    try:
        os.setpgid(0, request.get("pgid", 0))
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for item in sockets:
            item.close()
        for fd in wake_fds:
            os.close(fd)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        if request.get("parent"):
            _watch_parent(request["parent"])
        if WORKERS in request["args"]:
            subprocess.Popen = _sibling_popen
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        try:
            _run_program(request)
            status = 0
        except SystemExit as exit_:
            code = exit_.code
            if code is None or isinstance(code, int):
                status = code or 0
            else:
                print(code, file=sys.stderr)
                status = 1
        except BaseException:  # noqa: BLE001  as the interpreter reports an uncaught error
            traceback.print_exc()
            status = 1
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
    finally:
        os._exit(status)


def _run_program(request: dict) -> None:
    """Runs the request's module, code or script as `__main__`, with the interpreter's sys.argv
    and first sys.path entry for it."""
    import runpy
    import types

    args = request["args"]
    if "module" in request:
        sys.argv = [request["module"], *args]
        sys.path[0] = request["cwd"]  # as `python -m` puts the working folder first
        sys.modules.pop(request["module"], None)  # it runs as __main__, not as a module
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    elif "code" in request:
        sys.argv = ["-c", *args]
        sys.path[0] = ""  # as `python -c` does: the working folder
        main = types.ModuleType("__main__")
        sys.modules["__main__"] = main
        exec(compile(request["code"], "<string>", "exec"), main.__dict__)
    else:  # as `python SCRIPT` does: argv[0] as given, __file__ and sys.path[0] absolute
        path = os.path.abspath(request["script"])  # from the working folder, already entered
        sys.argv = [request["script"], *args]
        sys.path[0] = os.path.dirname(path)
        main = types.ModuleType("__main__")
        main.__file__ = path
        sys.modules["__main__"] = main
        with open(path, "rb") as source:
            exec(compile(source.read(), path, "exec"), main.__dict__)


if __name__ == "__main__":
    sys.path[0] = str(ROOT)  # not tests/: a fork's first entry becomes its working folder
    serve(sys.argv[1])
