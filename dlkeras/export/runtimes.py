"""Loads any artifact in its own runtime as `predict(inputs) -> np.ndarray`, with clear errors.

Which runtime answers for which file comes from `formats.ARTIFACTS` (the export formats and
model.keras); the runtimes themselves are in `loaders`.
"""

from __future__ import annotations

from pathlib import Path

from dlkeras.errors import RunError
from dlkeras.export.formats import ARTIFACTS


def load(format_name: str, path: Path, threads: int | None = None):
    """The predict function of the artifact at `path`.

    Args:
        threads: runtime threads of a threaded format (ONNX, TFLite); None: its loader's default.

    Raises:
        RunError: the artifact is missing or cannot be loaded (corrupt, wrong format, unsafe).
    """
    path = Path(path)
    if not path.exists():
        raise RunError(f"artifact {path} does not exist; run `make export` first")
    try:
        entry = ARTIFACTS[format_name]
        if threads is not None and entry.threaded:
            return entry.loader(path, threads=threads)
        return entry.loader(path)
    except RunError:  # already says what was wrong and what to do
        raise
    except Exception as error:  # each runtime has its own exception types for bad files
        raise RunError(
            f"cannot load {path} as {format_name}: {type(error).__name__}: {str(error)[:200]}. "
            "The file may be corrupt or truncated; export it again"
        ) from None


def format_of(path: Path) -> str:
    """The artifact format from its file name (as written by the exporters), else its suffix.

    Raises:
        RunError: no format has that file name or suffix.
    """
    path = Path(path)
    folders = [entry.name for entry in ARTIFACTS.values() if entry.directory]
    if path.is_dir() and folders:
        return folders[0]
    files = [entry for entry in ARTIFACTS.values() if not entry.directory]
    by_name = {entry.file_name: entry.name for entry in files}
    by_suffix: dict[str, str] = {}
    for entry in files:  # the first format with a suffix is that suffix's plain kind
        by_suffix.setdefault(Path(entry.file_name).suffix, entry.name)
    found = by_name.get(path.name) or by_suffix.get(path.suffix)
    if found:
        return found
    raise RunError(f"{path}: unknown artifact type; expected a {', '.join(by_suffix)} file or a "
                   f"{' or '.join(folders)} folder")
