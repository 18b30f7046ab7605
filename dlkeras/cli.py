"""What every command shares: --verbose, the recipe arguments and the `error:` line for user mistakes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from dlkeras.errors import DlkerasError


def add_verbose_argument(parser: argparse.ArgumentParser) -> None:
    """--verbose: the libraries' start-up messages, which `quiet.quiet_start` hides by default."""
    parser.add_argument("--verbose", action="store_true",
                        help="show the libraries' start-up messages on stderr (TensorFlow, XLA, "
                        "CUDA), hidden by default; DLKERAS_VERBOSE=1 does the same")


def add_recipe_arguments(parser: argparse.ArgumentParser, what: str, set_example: str) -> None:
    """--recipe, repeatable --set, --out, --resume [DIR] and --verbose for commands that run a recipe.

    Args:
        what: what the command leaves under --out ("run" or "search").
        set_example: an override shown in the --set help.
    """
    parser.add_argument("--recipe", help="bundled recipe name or path to a .toml recipe")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help=f"override a recipe field, e.g. {set_example} (repeatable)",
    )
    parser.add_argument("--out", default="runs", type=Path,
                        help=f"parent folder of {what} directories")
    parser.add_argument(
        "--resume", nargs="?", const="latest", metavar=f"{what.upper()}_DIR",
        help=f"continue an interrupted {what} (default: the recipe's latest {what} under --out)",
    )
    add_verbose_argument(parser)


def report_errors(body: Callable[[], int]) -> int:
    """Runs a command's body; a user's mistake becomes one `error:` line and exit status 2."""
    try:
        return body()
    except DlkerasError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def exit_process(status: int | None) -> None:
    """Ends a command's process with exit status `status`, as the interpreter would but for its
    last step.

    Non-daemon threads are joined, atexit handlers run (log handlers, temporary folders, the
    libraries' own) and stdout and stderr are flushed, as at any exit. What is skipped is the
    teardown of every loaded module that follows: with TensorFlow, JAX or PyTorch loaded it took
    1.1-1.9 s of a small run on 2 cores (bench/exit.py) and frees only memory the operating
    system frees anyway.

    Only for the `if __name__ == "__main__"` line of a command and the console script, never for
    code that a notebook or a test calls. On a Python without the two private hooks it uses
    (CPython's `threading._shutdown` and `atexit._run_exitfuncs`), it is `sys.exit(status)`.
    """
    import atexit
    import threading

    shutdown, run_exit_functions = (getattr(threading, "_shutdown", None),
                                    getattr(atexit, "_run_exitfuncs", None))
    if shutdown is None or run_exit_functions is None:
        sys.exit(status)
    shutdown()
    run_exit_functions()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):  # no stream, or one closed already
            pass
    os._exit(status or 0)
