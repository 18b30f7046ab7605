"""cli.exit_process: a command's process ends with its status after everything an exit owes."""

import subprocess
import sys

from support import ROOT

SCRIPT = """
import atexit, sys, threading, time
from pathlib import Path
from dlkeras.cli import exit_process

class Teardown:
    def __del__(self):
        print("module teardown ran", flush=True)

kept = Teardown()  # a module global: only the interpreter's module teardown deletes it
atexit.register(print, "atexit handler ran")

def late_writer():
    time.sleep(0.3)
    Path(sys.argv[1]).write_text("written by a thread")

threading.Thread(target=late_writer).start()  # not a daemon: the exit waits for it
print("buffered output")  # stdout is a pipe here: block-buffered until flushed
exit_process(int(sys.argv[2]) if sys.argv[2] != "none" else None)
print("never printed")
"""


def exit_of(tmp_path, status: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "thread.txt"), status],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_exit_waits_for_threads_runs_atexit_flushes_and_skips_the_module_teardown(tmp_path):
    result = exit_of(tmp_path, "3")
    assert result.returncode == 3, result.stderr
    assert result.stdout.splitlines() == ["buffered output", "atexit handler ran"]
    assert (tmp_path / "thread.txt").read_text() == "written by a thread"


def test_a_status_of_none_exits_0(tmp_path):
    result = exit_of(tmp_path, "none")
    assert result.returncode == 0, result.stderr
    assert "never printed" not in result.stdout
