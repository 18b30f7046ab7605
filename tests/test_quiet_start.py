"""Quiet start-up (`dlkeras.quiet`, --verbose) and the `dlkeras` command, in real processes."""

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dlkeras import quiet
from dlkeras.__main__ import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("dlkeras")
# What TensorFlow 2.21 prints while it loads on a CPU machine; the CUDA ones are kept beside a GPU.
NOTICES = ("absl::InitializeLog", "oneDNN custom operations", "cpu_feature_guard")
CUDA_NOTICES = ("Could not find cuda drivers", "failed call to cuInit")
LOG = "I0000 00:00:1796167524.791977   22908"


def run(argv, **kwargs):
    """`argv` in a fresh process whose environment lets every start-up notice out."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", quiet.VERBOSE_VARIABLE)}
    return subprocess.run([str(a) for a in argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180, **kwargs)


def notices_in(stderr: str) -> list[str]:
    shown = NOTICES if quiet.nvidia_gpu_present() else NOTICES + CUDA_NOTICES
    return [notice for notice in shown if notice in stderr]


@pytest.mark.parametrize("line", [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    f"{LOG} port.cc:153] oneDNN custom operations are on. You may see slightly different numerical "
    "results due to floating-point round-off errors from different computation orders.",
    f"{LOG} cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available CPU "
    "instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.",
])
def test_start_up_notices_are_noise(line):
    assert quiet.is_noise(line + "\n", gpu_present=False)
    assert quiet.is_noise(line, gpu_present=True)


@pytest.mark.parametrize("line", [
    f"{LOG} cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.",
    "E0000 00:00:1796167632.022437   23896 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
])
def test_cuda_notices_are_noise_only_without_a_gpu(line):
    assert quiet.is_noise(line, gpu_present=False)
    assert not quiet.is_noise(line, gpu_present=True)


@pytest.mark.parametrize("line", [
    "E0000 00:00:1796167632.022437   23896 saved_model.cc:12] could not read the graph",
    "F0000 00:00:1796167632.022437   23896 port.cc:153] oneDNN custom operations are on.",
    "W0000 00:00:1.0   1 gpu_device.cc:2344] Cannot dlopen some GPU libraries.",
    "/path/to/module.py:3: UserWarning: oneDNN custom operations are on.",
    "error: runs/x is not a finished run",
])
def test_everything_else_is_kept(line):
    assert not quiet.is_noise(line, gpu_present=False)


def test_filter_copies_lines_unchanged_and_drops_notices():
    source = io.BytesIO(b"WARNING: All log messages before absl::InitializeLog() is called are "
                        b"written to STDERR\nkept \xff bytes\n" + f"{LOG} port.cc:153] oneDNN "
                        "custom operations are on.\n".encode() + b"no newline at the end")
    sink = io.BytesIO()
    quiet.copy_without_noise(source, sink, gpu_present=False)
    assert sink.getvalue() == b"kept \xff bytes\nno newline at the end"


def test_filtered_stderr_keeps_real_messages_even_when_the_process_aborts():
    # the filter outlives its parent: a fatal message written just before an abort still shows
    code = textwrap.dedent(f"""
        import os, sys, warnings
        from dlkeras.quiet import filtered_stderr
        with filtered_stderr():
            os.write(2, b"{LOG} port.cc:153] oneDNN custom operations are on.\\nnative line\\n")
            print("python line", file=sys.stderr)
            warnings.warn("a warning that matters")
            os.write(2, b"F0000 00:00:1.0   1 cpu_feature_guard.cc:1] built for AVX\\n")
            os.abort()
    """)
    result = run([sys.executable, "-c", code])
    assert result.returncode != 0
    assert "oneDNN" not in result.stderr
    for kept in ("native line", "python line", "UserWarning: a warning that matters", "built for AVX"):
        assert kept in result.stderr, result.stderr


def test_quiet_start_installs_the_filter_and_verbose_removes_it(monkeypatch):
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.delitem(sys.modules, quiet.FIRST_IMPORT, raising=False)
    monkeypatch.delenv(quiet.VERBOSE_VARIABLE, raising=False)

    def installed():
        return [f for f in sys.meta_path if isinstance(f, quiet.FilteredFirstImport)]

    quiet.quiet_start(verbose=False)
    quiet.quiet_start(verbose=False)
    assert len(installed()) == 1
    quiet.quiet_start(verbose=True)
    assert not installed()
    assert os.environ[quiet.VERBOSE_VARIABLE] == "1"  # inherited by the workers a command starts
    quiet.quiet_start(verbose=False)
    assert not installed()


def test_a_command_that_loads_tensorflow_is_quiet_and_verbose_shows_the_notices(tmp_path):
    # `export` loads TensorFlow before it finds that the run is not finished: a cheap, real start
    command = [SCRIPT, "export", "--run", tmp_path, "--out", tmp_path / "saved"]
    result = run(command)
    assert result.returncode == 2
    assert "error:" in result.stderr and "is not a finished run" in result.stderr
    assert not notices_in(result.stderr), result.stderr

    verbose = run([sys.executable, "-m", "dlkeras.export", *command[2:], "--verbose"])
    assert verbose.returncode == 2 and "is not a finished run" in verbose.stderr
    assert notices_in(verbose.stderr), verbose.stderr


def test_dlkeras_help_lists_every_command():
    assert SCRIPT.is_file(), f"{SCRIPT} missing: pip install -e . installs the dlkeras command"
    result = run([SCRIPT, "--help"])
    assert result.returncode == 0, result.stderr
    for name, (_, what) in COMMANDS.items():
        assert f"  {name}" in result.stdout and what in result.stdout


def test_an_unknown_command_fails_with_close_matches():
    result = run([SCRIPT, "trian", "--recipe", "mlp_churn"])
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith("error: unknown command 'trian'")
    assert "did you mean train?" in result.stderr
    assert run([SCRIPT]).returncode == 2


def test_python_m_dlkeras_dispatches_to_the_command(tmp_path):
    result = run([sys.executable, "-m", "dlkeras", "prune", "--runs", tmp_path, "--exports", tmp_path])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "nothing to remove"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_takes_verbose(name, capsys):
    import importlib

    with pytest.raises(SystemExit) as stop:
        importlib.import_module(COMMANDS[name][0]).main(["--help"])
    assert stop.value.code == 0
    assert "--verbose" in capsys.readouterr().out
