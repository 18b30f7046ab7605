"""The version folders of a recipe's exports: claimed atomically, shown only when complete.

    saved_models/<recipe>/
        1/            a complete export whose artifacts all passed the parity gate
        2-failed/     a complete export with at least one artifact that failed it
        .3.partial/   an export in progress, or what a killed export left behind

`claim` takes the number after every existing version by creating `.<n>.partial` with
`os.mkdir`, which succeeds for exactly one process: exports started at the same time get
different numbers (the loser of a race takes the next one). The exporter holds an exclusive
lock (`flock`) on that folder while it works; the kernel drops the lock when the process dies,
even by SIGKILL, so a later export can tell a killed export's leftover (lock free) from one still
running (lock held) and removes only the former. `Claim.publish` renames the folder to `<n>` or
`<n>-failed` as the very last step, so a numbered folder is always complete.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks (see remove_leftovers)
    fcntl = None

PUBLISHED = re.compile(r"^(\d+)(-failed)?$")
PARTIAL = re.compile(r"^\.(\d+)\.partial$")


class Claim:
    """A claimed version number and its hidden folder, locked until published or abandoned.

    Used as a context manager: leaving the block without `publish` removes the folder.

    Attributes:
        root: the recipe's export folder (saved_models/<recipe>).
        version: the claimed number.
        folder: the hidden `.<version>.partial` folder the artifacts are written into.
        published: the folder's final path once `publish` has run, else None.
    """

    def __init__(self, root: Path, version: int, folder: Path, handle: int | None):
        self.root, self.version, self.folder = root, version, folder
        self._handle = handle
        self.published: Path | None = None

    def publish(self, passed: bool) -> Path:
        """Renames the folder to `<version>` (or `<version>-failed`) and returns the new path."""
        final = self.root / (str(self.version) if passed else f"{self.version}-failed")
        os.rename(self.folder, final)  # `claim` made sure no other export publishes this number
        self.published = final
        self._release()
        return final

    def abandon(self) -> None:
        """Removes the folder and gives the number up (a later export may take it)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self._release()

    def _release(self) -> None:
        if self._handle is not None:
            os.close(self._handle)  # closing the folder drops its lock
            self._handle = None

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.published is None:
            self.abandon()


def claim(root: Path) -> Claim:
    """Claims the next version under `root`, after removing what killed exports left there.

    Returns:
        The claim; its folder exists, is empty and is locked by this process.
    """
    root.mkdir(parents=True, exist_ok=True)
    remove_leftovers(root)
    version = next_version(root)
    while True:
        folder = root / f".{version}.partial"
        try:
            os.mkdir(folder)
        except FileExistsError:  # another export claimed it first
            version += 1
            continue
        try:  # locked before anything is written into it (see remove_leftovers)
            handle = _lock(folder, wait=True) if fcntl else None
        except OSError:  # a file system without locks: the number is ours all the same
            handle = None
        if any((root / name).exists() for name in (str(version), f"{version}-failed")):
            # our listing predates another export's publishing of this number
            os.rmdir(folder)
            if handle is not None:
                os.close(handle)
            version += 1
            continue
        return Claim(root, version, folder, handle)


def next_version(root: Path) -> int:
    """One more than the highest version under `root`, published or in progress."""
    numbers = [int(found.group(1)) for found in map(_match, _names(root)) if found]
    return max(numbers, default=0) + 1


def remove_leftovers(root: Path) -> list[Path]:
    """Removes the `.<n>.partial` folders of exports that died; returns what was removed.

    A folder is a leftover when nobody holds its lock and it holds something: a running export
    locks its folder before writing into it, so an empty unlocked folder may be one created a
    moment ago, and is kept. Without `fcntl` (Windows) a running export's folder cannot be told
    from a leftover: nothing is removed, and leftovers stay hidden and unused.
    """
    if fcntl is None:
        return []
    removed = []
    for name in _names(root):
        path = root / name
        if not PARTIAL.match(name):
            continue
        try:
            handle = _lock(path, wait=False)
        except OSError:  # published or removed meanwhile, or not a folder
            continue
        if handle is None:
            continue  # an export is writing it
        try:
            same = os.stat(path).st_ino == os.fstat(handle).st_ino  # not published and reclaimed
            if same and any(path.iterdir()):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        except FileNotFoundError:  # published while we looked
            pass
        finally:
            os.close(handle)
    return removed


def abandoned(folder: Path) -> bool:
    """True when `folder` is a `.<n>.partial` folder that no running export holds."""
    if fcntl is None or not PARTIAL.match(folder.name):
        return False
    try:
        handle = _lock(folder, wait=False)
    except OSError:
        return False
    if handle is None:
        return False  # an export is writing it
    os.close(handle)
    return True


def _lock(folder: Path, wait: bool) -> int | None:
    """An open handle on `folder` holding its exclusive lock; None when another process holds it."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        return None
    except OSError:
        os.close(handle)
        raise
    return handle


def _names(root: Path) -> list[str]:
    try:
        return os.listdir(root)
    except FileNotFoundError:
        return []


def _match(name: str):
    return PUBLISHED.match(name) or PARTIAL.match(name)
