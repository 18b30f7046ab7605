"""dlkeras COMMAND [ARGS ...] (or python -m dlkeras COMMAND ...): every command under one name.

`dlkeras train ...` is `python -m dlkeras.train ...`: the rest of the line goes to that command's
own `main`, which parses it. Only the chosen command is imported, so `dlkeras --help` is instant.
"""

from __future__ import annotations

import difflib
import importlib
import sys

from dlkeras import __version__
from dlkeras.cli import exit_process

# command: (module whose main(argv) runs it, what it does)
COMMANDS = {
    "train": ("dlkeras.train", "train a recipe and evaluate it on its test split"),
    "tune": ("dlkeras.tune", "search a recipe's hyperparameters (its tune.space) with KerasTuner"),
    "check": ("dlkeras.check", "check a recipe's data and model before training"),
    "export": ("dlkeras.export.__main__", "export a finished run, each format through the parity gate"),
    "predict": ("dlkeras.predict", "predict from raw inputs with a run or an exported artifact"),
    "serve": ("dlkeras.serve", "serve exported models over HTTP (TensorFlow Serving's REST API)"),
    "prune": ("dlkeras.prune", "list (and with --apply remove) old runs and failed exports"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:{width}s}  {what}" for name, (_, what) in COMMANDS.items()]
    return "\n".join([
        "usage: dlkeras COMMAND [ARGS ...]", "",
        "Keras 3 recipes that train, evaluate and export real models on TensorFlow, JAX or PyTorch.",
        "", "commands:", *lines, "",
        "dlkeras COMMAND --help shows a command's arguments; every command takes --verbose.",
    ])


def main(argv=None) -> int:
    """Runs `dlkeras COMMAND ARGS`; returns the command's exit status (2: no such command)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        print(usage(), file=sys.stderr)
        return 2
    name, rest = argv[0], argv[1:]
    if name in ("-h", "--help"):
        print(usage())
        return 0
    if name == "--version":
        print(f"dlkeras {__version__}")
        return 0
    if name not in COMMANDS:
        print(f"usage: dlkeras COMMAND [ARGS ...]\nerror: {unknown(name)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return module.main(rest)


def run() -> None:
    """The `dlkeras` console script: `main` on the command line, then `cli.exit_process`."""
    exit_process(main())


def unknown(name: str) -> str:
    close = difflib.get_close_matches(name, COMMANDS, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}?" if close else f"choose from {', '.join(COMMANDS)}"
    return f"unknown command {name!r}: {hint} (dlkeras --help lists them)"


if __name__ == "__main__":
    run()
