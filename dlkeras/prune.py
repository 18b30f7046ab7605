"""python -m dlkeras.prune [--runs runs] [--exports saved_models] [--keep 3] [--apply]

Lists what can go, and removes it with --apply (a dry run by default):
- finished runs of a recipe older than its newest `--keep` finished runs;
- unfinished runs (no metrics.json) that a newer run of the same recipe has replaced;
- failed exports (`<version>-failed`) and exports a kill left unfinished (hidden folders).
Never a run that runs/latest/<recipe> points at, the newest run of a recipe, or a search.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass
from pathlib import Path

from dlkeras.cli import add_verbose_argument, exit_process, report_errors
from dlkeras.errors import ConfigError
from dlkeras.quiet import quiet_start


@dataclass(frozen=True)
class Candidate:
    path: Path
    reason: str
    size: int


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m dlkeras.prune",
        description="List (and with --apply remove) old runs and failed or unfinished exports.",
    )
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="folder of run directories")
    parser.add_argument("--exports", type=Path, default=Path("saved_models"),
                        help="folder of exported artifacts")
    parser.add_argument("--keep", type=int, default=3,
                        help="finished runs to keep per recipe, newest first (default 3)")
    parser.add_argument("--apply", action="store_true", help="remove what is listed")
    add_verbose_argument(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet_start(args.verbose)  # before anything loads TensorFlow
    return report_errors(lambda: run(args))


def run(args) -> int:
    if args.keep < 1:
        raise ConfigError(f"--keep {args.keep}: keep at least the newest finished run (1 or more)")
    found = old_runs(args.runs, args.keep) + unusable_exports(args.exports)
    if not found:
        print("nothing to remove")
        return 0
    for item in found:
        print(f"{item.size / 2**20:9.1f} MB  {item.path}  ({item.reason})")
    total = sum(item.size for item in found) / 2**20
    if not args.apply:
        print(f"{len(found)} folder(s), {total:.1f} MB: nothing removed (dry run); add --apply")
        return 0
    for item in found:
        shutil.rmtree(item.path)
    print(f"removed {len(found)} folder(s), {total:.1f} MB")
    return 0


def old_runs(runs: Path, keep: int) -> list[Candidate]:
    """Runs past the newest `keep` finished ones of their recipe, and replaced unfinished ones."""
    if not runs.is_dir():
        return []
    linked = {link.resolve() for link in (runs / "latest").glob("*") if link.is_symlink()}
    by_recipe: dict[str, list[Path]] = {}
    for path in runs.iterdir():
        if (path / "recipe.json").is_file() and "-tune-" not in path.name:
            by_recipe.setdefault(recipe_of(path), []).append(path)
    found = []
    for paths in by_recipe.values():
        paths.sort(key=lambda p: (p / "recipe.json").stat().st_mtime, reverse=True)
        finished = [p for p in paths if (p / "metrics.json").is_file()]
        for path in paths[1:]:
            if path.resolve() in linked:
                continue
            if path not in finished:
                found.append(Candidate(path, "unfinished, replaced by a newer run", size_of(path)))
            elif finished.index(path) >= keep:
                found.append(Candidate(path, f"older than the newest {keep} finished runs",
                                       size_of(path)))
    return sorted(found, key=lambda c: c.path)


def unusable_exports(exports: Path) -> list[Candidate]:
    """Export versions that failed the parity gate, and folders a killed export left behind
    (never the folder of an export still running)."""
    from dlkeras.export.versions import abandoned

    if not exports.is_dir():
        return []
    found = []
    for folder in sorted(p for p in exports.glob("*/*") if p.is_dir()):
        if folder.name.endswith("-failed"):
            found.append(Candidate(folder, "failed the parity gate", size_of(folder)))
        elif abandoned(folder):
            found.append(Candidate(folder, "unfinished export (killed)", size_of(folder)))
    return found


def recipe_of(path: Path) -> str:
    """The recipe name of a run folder: `<recipe>-<YYYYmmdd>-<HHMMSS>[-n]`."""
    parts = path.name.split("-")
    while parts and (parts[-1].isdigit()):
        parts.pop()
    return "-".join(parts)


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


if __name__ == "__main__":
    exit_process(main())
