"""Tiny exports of each recipe family, and servers started on them as real processes."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import prestart
import pytest

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = ("mlp_churn", "bert_tickets", "cnn_digits", "lstm_sales")  # table, text, image, forecast


@pytest.fixture(scope="session")
def exports(exported, tmp_path_factory):
    """A saved_models folder with version 1 of each family: the session's export of its smoke
    run (tests/conftest.py `exported`) with ONNX its only artifact, as a user who deleted the
    others has it (the server skips artifacts that are missing)."""
    from dlkeras.export.formats import FORMATS

    others = {f.file_name for name, f in FORMATS.items() if name != "onnx"}
    out = tmp_path_factory.mktemp("saved_models")
    for name in FAMILIES:
        shutil.copytree(exported[name]["folder"], out / name / "1",
                        ignore=lambda folder, names: [n for n in names if n in others])
    return out


class Server:
    """`python -m dlkeras.serve` in a process of its own, spoken to over real HTTP."""

    def __init__(self, args, timeout: float = 240):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        self.process = prestart.popen(
            [sys.executable, "-m", "dlkeras.serve", *map(str, args), "--port", "0"], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        try:
            self.url = self._wait_for_address(timeout)
            deadline = time.monotonic() + timeout
            while not self._ready():  # uvicorn listens once the app has started
                assert time.monotonic() < deadline and self.process.poll() is None, self.output
                time.sleep(0.1)
        except BaseException:  # a server that never got ready is not left running
            self.process.kill()
            self.process.wait()
            raise

    def _ready(self) -> bool:
        try:
            return self.get("/readyz")[0] == 200
        except urllib.error.URLError:
            return False

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    def _wait_for_address(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.startswith("listening on "):
                    return line.split()[2]
            if self.process.poll() is not None:
                time.sleep(0.2)  # the reader thread collects the last lines
                raise AssertionError(f"the server exited with {self.process.returncode}:\n{self.output}")
            time.sleep(0.1)
        raise AssertionError(f"the server did not start in {timeout} s:\n{self.output}")

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def request(self, path: str, body=None, method: str | None = None, timeout: float = 120):
        """(status, parsed JSON or text) of one request; `body`: bytes, or any JSON value."""
        data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, _parsed(response)
        except urllib.error.HTTPError as error:
            return error.code, _parsed(error)

    def get(self, path: str):
        return self.request(path)

    def post(self, path: str, body):
        return self.request(path, body, method="POST")

    def metric(self, name: str, **labels) -> float:
        """The value of one sample in /metrics (0 when absent)."""
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in self.get("/metrics")[1].splitlines():
            sample, _, value = line.rpartition(" ")
            if sample.split("{")[0] == name and _labels(sample) == wanted:
                return float(value)
        return 0.0

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        self.reader.join(10)  # the last lines
        return code


def _parsed(response):
    text = response.read().decode()
    return json.loads(text) if "json" in response.headers.get("content-type", "") else text


def _labels(sample: str) -> str:
    inside = sample.partition("{")[2].rstrip("}")
    return ",".join(sorted(part for part in inside.split(",") if part))


@pytest.fixture(scope="module")
def server(exports):
    """One server on every family's export; small limits so the limit errors are cheap to hit."""
    running = Server([exports, "--max-instances", "8", "--max-body-mb", "0.25", "--max-wait-ms", "5"])
    yield running
    running.stop()


@pytest.fixture
def start_server():
    """Starts servers with the given arguments; stops whichever are still running at the end."""
    started = []

    def start(*args):
        started.append(Server(args))
        return started[-1]

    yield start
    for running in started:
        running.stop()
