"""Quiet start-up: the native libraries' start-up notices kept off stderr, unless --verbose.

While its shared libraries load, TensorFlow's native code logs before its logging is set up, so
neither TF_CPP_MIN_LOG_LEVEL (even 3) nor any absl or glog setting reaches these lines: absl's
"All log messages before absl::InitializeLog() ...", the oneDNN notice and "Could not find cuda
drivers" (each twice: the profiler plugin carries its own copy of the runtime). Then come the
CPU-instructions notice and, at device discovery, "failed call to cuInit" on a machine with CUDA
libraries and no GPU. Environment variables are left as the user set them: TF_ENABLE_ONEDNN_OPTS
changes numerics, and TF_CPP_MIN_LOG_LEVEL=3 would also hide TensorFlow's real errors later on.

So while TensorFlow is first imported and finds its devices, file descriptor 2 goes through a
filter process that drops exactly the known notices below and passes every other line on as it
comes (a real error, a Python warning). The filter is a separate process so that it outlives a
parent killed inside the import: a fatal message written just before an abort (a CPU without the
instructions the build needs) still reaches the terminal. JAX and PyTorch print nothing at
start-up on a CPU machine; under those backends TensorFlow still loads, for tf.data.

`python -m dlkeras.quiet` is that filter: stdin to stdout, without the notices.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

VERBOSE_VARIABLE = "DLKERAS_VERBOSE"
FIRST_IMPORT = "tensorflow"

# absl/glog line prefix: severity (fatal never matches), date, time, thread, file:line]
_LOG = r"^[IWE]\d{4} [^\]]*?\] "
NOTICES = tuple(re.compile(pattern) for pattern in (
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
    _LOG + r"oneDNN custom operations are on\.",
    _LOG + r"This TensorFlow binary is optimized to use available CPU instructions",
    r"^To enable (the following instructions|them in other operations)\b.*"
    r"rebuild TensorFlow with the appropriate compiler flags\.$",
    # TensorFlow's CUDA builds, registering their plugins once per copy of the runtime
    _LOG + r"Unable to register cu(DNN|FFT|BLAS) factory",
    _LOG + r"TF-TRT Warning: Could not find TensorRT",
    _LOG + r"computation placer already registered",
))
# Noise only where there is no NVIDIA GPU; beside one they say the GPU goes unused.
CUDA_NOTICES = tuple(re.compile(pattern) for pattern in (
    _LOG + r"Could not find cuda drivers on your machine, GPU will not be used\.",
    _LOG + r"failed call to cuInit",
    r"^[IWE]\d{4} [^\]]*?cuda_diagnostics\.cc:\d+\] ",
))

# Python warnings from library internals that no user action changes: (category, message, module)
NOISY_WARNINGS = (
    # keras' ONNX export probes `np.object` before restoring it for tf2onnx
    (FutureWarning, r"In the future `np\.object` will be defined", r"keras\.src\.export\.tf2onnx_lib"),
)


def nvidia_gpu_present() -> bool:
    """True when the kernel shows an NVIDIA driver or device (also a GPU passed to WSL)."""
    return (os.path.exists("/proc/driver/nvidia") or os.path.exists("/dev/dxg")
            or bool(glob.glob("/dev/nvidia[0-9]*")))


def is_noise(line: str, gpu_present: bool) -> bool:
    """True for a known start-up notice; every other line (errors, warnings) is kept."""
    line = line.rstrip("\r\n")
    patterns = NOTICES if gpu_present else NOTICES + CUDA_NOTICES
    return any(pattern.search(line) for pattern in patterns)


def copy_without_noise(source, sink, gpu_present: bool) -> None:
    """Copies binary lines from `source` to `sink` as they come, dropping the notices."""
    for line in source:
        if not is_noise(line.decode("utf-8", "replace"), gpu_present):
            sink.write(line)
            sink.flush()


def quiet_start(verbose: bool) -> None:
    """Keeps the start-up notices off stderr from here on, or lets them all through.

    Call first thing in a command, before anything imports TensorFlow. Importing stays lazy:
    `--help` and `--list` load nothing heavy, and the filter runs only around the first
    `import tensorflow`, wherever in the command that happens. Python warnings all show, except
    the few in `NOISY_WARNINGS`.

    Args:
        verbose: show everything. DLKERAS_VERBOSE=1 does the same, and is set for the worker
            processes a verbose command starts.
    """
    finders = [finder for finder in sys.meta_path if isinstance(finder, FilteredFirstImport)]
    if verbose or os.environ.get(VERBOSE_VARIABLE) == "1":
        os.environ[VERBOSE_VARIABLE] = "1"
        for finder in finders:
            sys.meta_path.remove(finder)
        return
    for category, message, module in NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message, category, module)
    if not finders and FIRST_IMPORT not in sys.modules:
        sys.meta_path.insert(0, FilteredFirstImport())


class FilteredFirstImport:
    """Import hook: finds tensorflow as the other finders do and loads it through the filter."""

    def find_spec(self, name, path=None, target=None):
        if name != FIRST_IMPORT:
            return None
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = FilteredLoader(spec.loader, self)
        return spec


class FilteredLoader:
    """Runs the package's own loader with stderr filtered, then lists the devices likewise."""

    def __init__(self, loader, finder: FilteredFirstImport):
        self.loader = loader
        self.finder = finder

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        if self.finder in sys.meta_path:  # one filtered import per process
            sys.meta_path.remove(self.finder)
        module.__loader__ = module.__spec__.loader = self.loader  # the module sees its own loader
        with filtered_stderr():
            self.loader.exec_module(module)
            try:
                # CUDA is initialised here, ahead of first use, so that its notice is filtered
                # too; physical devices can still be configured afterwards
                module.config.list_physical_devices()
            except Exception:  # the first real use reports a device problem itself
                pass


@contextlib.contextmanager
def filtered_stderr():
    """File descriptor 2 goes through `python -m dlkeras.quiet` for the duration."""
    sys.stderr.flush()
    started = start_filter()
    if started is None:  # no stderr, or no process to spare: leave stderr as it is
        yield
        return
    filter_process, write_end, saved = started
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the filter drains and exits
        os.close(saved)
        with contextlib.suppress(subprocess.TimeoutExpired):
            filter_process.wait(timeout=10)


def start_filter():
    """The filter process writing to the present stderr, the pipe's write end and a copy of fd 2."""
    try:
        saved = os.dup(2)
    except OSError:
        return None
    read_end, write_end = os.pipe()
    try:
        # cwd: `-m` finds this package there; -S: the filter needs nothing from site-packages
        filter_process = subprocess.Popen(
            [sys.executable, "-S", "-m", "dlkeras.quiet"], stdin=read_end, stdout=saved,
            cwd=Path(__file__).resolve().parents[1], start_new_session=True)
    except OSError:
        os.close(write_end)
        os.close(saved)
        return None
    finally:
        os.close(read_end)
    return filter_process, write_end, saved


if __name__ == "__main__":
    copy_without_noise(sys.stdin.buffer, sys.stdout.buffer, nvidia_gpu_present())
