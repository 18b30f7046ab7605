"""Version folders: claimed atomically, published only when complete, leftovers of killed exports
removed, and exports started together never sharing a number."""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import prestart
import pytest

from dlkeras import export
from dlkeras.export import versions

ROOT = Path(__file__).resolve().parents[2]
RECIPE = "mlp_churn"
COMPLETE = ("model.keras", "model.onnx", "labels.json", "preprocessing.json", "export_report.json",
            "export_summary.md", "index.html")


def check_published(root: Path) -> list[str]:
    """The visible folders under `root`, each checked complete and named after its report."""
    names = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
    for name in names:
        folder = root / name
        missing = [f for f in COMPLETE if not (folder / f).is_file()]
        assert not missing, f"{folder} looks finished but lacks {missing}"
        report = json.loads((folder / "export_report.json").read_text())
        assert name == (str(report["version"]) if report["passed"] else f"{report['version']}-failed")
    return names


def partials(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if versions.PARTIAL.match(p.name))


def start_export(run: Path, out: Path, log: Path, latency_seconds: float) -> subprocess.Popen:
    """`python -m dlkeras.export --formats onnx` of `run` in its own process."""
    command = [sys.executable, "-m", "dlkeras.export", "--run", str(run), "--formats", "onnx",
               "--out", str(out), "--parity-examples", "32", "--latency-seconds", str(latency_seconds)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    with open(log, "w") as stream:
        return prestart.popen(command, cwd=ROOT, env=env, stdout=stream, stderr=subprocess.STDOUT)


# === The claim, in this process ===


def test_claims_made_at_the_same_moment_get_different_versions(tmp_path):
    start, claims = threading.Barrier(8), []

    def claim_and_publish():
        start.wait()
        with versions.claim(tmp_path) as claim:
            (claim.folder / "export_report.json").write_text(json.dumps({"version": claim.version}))
            claims.append(claim.version)
            claim.publish(passed=True)

    threads = [threading.Thread(target=claim_and_publish) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claims) == list(range(1, 9))
    assert sorted(os.listdir(tmp_path), key=int) == [str(n) for n in range(1, 9)]
    assert all((tmp_path / str(n) / "export_report.json").is_file() for n in range(1, 9))


def test_a_number_taken_meanwhile_is_skipped(tmp_path, monkeypatch):
    (tmp_path / "2-failed").mkdir()
    in_progress = versions.claim(tmp_path)  # .3.partial, locked
    (tmp_path / "4").mkdir()  # published after a stale listing that ended at 2
    monkeypatch.setattr(versions, "next_version", lambda root: 3)
    with versions.claim(tmp_path) as claim:
        assert claim.version == 5 and claim.folder.name == ".5.partial"
        assert partials(tmp_path) == [".3.partial", ".5.partial"]  # no stray .4.partial
    in_progress.abandon()
    assert sorted(os.listdir(tmp_path)) == ["2-failed", "4"]


def test_only_dead_exports_partial_folders_are_removed(tmp_path):
    running = versions.claim(tmp_path)  # this process holds its lock
    (running.folder / "model.keras").write_text("being written")
    (tmp_path / ".7.partial").mkdir()
    (tmp_path / ".7.partial" / "model.keras").write_text("left by a killed export")
    (tmp_path / ".8.partial").mkdir()  # empty: may have been claimed a moment ago
    assert versions.remove_leftovers(tmp_path) == [tmp_path / ".7.partial"]
    assert partials(tmp_path) == [".1.partial", ".8.partial"]
    assert (running.folder / "model.keras").read_text() == "being written"
    running.abandon()


def test_an_export_that_raises_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), versions.claim(tmp_path) as claim:
        (claim.folder / "model.keras").write_text("half")
        raise RuntimeError("conversion failed")
    assert os.listdir(tmp_path) == []


# === Real exports in their own processes ===


def test_a_killed_export_leaves_no_finished_looking_folder(smoke_run, tmp_path):
    run, root = smoke_run(RECIPE), tmp_path / RECIPE
    export_process = start_export(run, tmp_path, tmp_path / "killed.log", latency_seconds=2)
    deadline = time.monotonic() + 240
    while not (root / ".1.partial").is_dir() or not any((root / ".1.partial").iterdir()):
        assert export_process.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the export never started writing its version"
        time.sleep(0.05)
    # anywhere in copying the model, building the inputs and converting (the latency timings
    # that follow alone take over 8 s)
    delay = random.uniform(0, 2.5)
    time.sleep(delay)
    export_process.send_signal(signal.SIGKILL)
    export_process.wait()
    assert export_process.returncode == -signal.SIGKILL, f"finished before the kill at {delay:.2f} s"
    assert check_published(root) == [], f"killed at {delay:.2f} s"
    assert partials(root) == [".1.partial"]

    report = export.export_run(run, ["onnx"], tmp_path, parity_limit=16, latency_seconds=0.01)
    assert report["passed"] and check_published(root) == ["1"]
    assert partials(root) == []  # the killed export's folder was removed


def test_two_exports_started_together_get_their_own_versions(smoke_run, tmp_path):
    run, root = smoke_run(RECIPE), tmp_path / RECIPE
    exports = [start_export(run, tmp_path, tmp_path / f"export{i}.log", latency_seconds=1)
               for i in range(2)]
    for i, process in enumerate(exports):
        assert process.wait(timeout=300) == 0, (tmp_path / f"export{i}.log").read_text()[-3000:]
    assert check_published(root) == ["1", "2"] and partials(root) == []
    written = sorted((tmp_path / f"export{i}.log").read_text().split("written: ")[-1].splitlines()[0]
                     for i in range(2))
    assert written == [str(root / "1"), str(root / "2")]
