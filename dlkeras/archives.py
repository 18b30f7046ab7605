"""Zip archives from users (`.keras` models, `.npz` arrays), checked before anything reads them.

A zip file's central directory declares every member's name and uncompressed size. Before
Keras or NumPy opens an archive, `check_zip` refuses the two hostile shapes that those
declarations reveal without decompressing a byte:

- a member name that is absolute or climbs out with `..` (path traversal: extracting it would
  write outside the extraction folder);
- more declared content than the file could honestly hold: over `MAX_EXPANSION` times the
  archive's size once the total passes `EXPANSION_FLOOR_BYTES` (a decompression bomb; deflate
  itself cannot exceed about 1030:1, so only crafted archives get there).

An archive of stored (uncompressed) members is as large as what it declares, so large honest
models are never refused: there is no absolute size limit.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from dlkeras.errors import DlkerasError

MAX_EXPANSION = 200
EXPANSION_FLOOR_BYTES = 1 << 30  # below 1 GiB in total, any ratio is harmless
_DRIVE = re.compile(r"^[A-Za-z]:")


def check_zip(path: Path, error: type[DlkerasError], fix: str) -> None:
    """Raises `error` when the zip archive at `path` has unsafe member names or is a bomb.

    An archive zipfile cannot read at all passes: the caller's reader reports it as corrupt.

    Args:
        path: the archive (an existing file).
        error: the exception type to raise (the caller's: RunError for models, DataError for data).
        fix: what the user should do instead, the end of the message (lower case).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return
    unsafe = [m.filename for m in members if unsafe_name(m.filename)]
    if unsafe:
        shown = ", ".join(map(repr, unsafe[:3])) + (" ..." if len(unsafe) > 3 else "")
        raise error(f"{path} is a zip archive with member path(s) outside the archive ({shown}: "
                    f"absolute or with '..'), a path-traversal attack, so nothing was read; {fix}")
    declared = sum(m.file_size for m in members)
    size = max(Path(path).stat().st_size, 1)
    if declared > EXPANSION_FLOOR_BYTES and declared > MAX_EXPANSION * size:
        raise error(f"{path} declares {declared / 2**30:.1f} GiB of content in a file of "
                    f"{size:,} bytes ({declared / size:,.0f}:1, more than {MAX_EXPANSION}:1), a "
                    f"possible decompression bomb, so nothing was decompressed; {fix}")


def unsafe_name(name: str) -> bool:
    """True for a member name that is absolute or has a `..` part (either slash counts)."""
    parts = re.split(r"[\\/]", name)
    return name.startswith(("/", "\\")) or bool(_DRIVE.match(name)) or ".." in parts
