"""What every command shares: the recipe arguments and the `error:` line for user mistakes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from dlkeras.errors import DlkerasError


def add_recipe_arguments(parser: argparse.ArgumentParser, what: str, set_example: str) -> None:
    """--recipe, repeatable --set, --out and --resume [DIR] for commands that run a recipe.

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


def report_errors(body: Callable[[], int]) -> int:
    """Runs a command's body; a user's mistake becomes one `error:` line and exit status 2."""
    try:
        return body()
    except DlkerasError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
