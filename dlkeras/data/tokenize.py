"""Tokenization for text pipelines: the preset's tokenizer, sequence length, tf.data transform."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dlkeras import presets

LENGTH_MULTIPLE = 8
PERCENTILE = 99


def load_tokenizer(preset: str):
    """The preset's keras-hub tokenizer, matching the original tokenizer.

    Uncased WordPiece vocabularies (BERT-family) were built on lower-cased text with accents
    removed; keras-hub lower-cases but keeps accents unless asked, so accents are stripped
    whenever the tokenizer lower-cases (as Hugging Face's BertTokenizer does).

    Raises:
        ConfigError: the preset cannot be found or loaded.
    """
    import keras_hub

    if is_tokenizer_folder(preset):
        return load_tokenizer_folder(Path(preset))
    handle = presets.resolve(preset)
    try:
        tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(handle)
        if getattr(tokenizer, "lowercase", False) and hasattr(tokenizer, "strip_accents"):
            tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(handle, strip_accents=True)
    except Exception as error:  # keras-hub raises many types for missing/unreachable presets
        raise presets.load_failure(preset, error) from None
    return tokenizer


def is_tokenizer_folder(source: str) -> bool:
    """A folder written by `save_tokenizer` (tokenizer.json + assets, no model config)."""
    folder = Path(source)
    return (folder / "tokenizer.json").is_file() and not (folder / "config.json").is_file()


def save_tokenizer(tokenizer, folder: Path) -> None:
    """Writes the tokenizer's settings and vocabulary so it travels with an exported model."""
    tokenizer.save_to_preset(str(folder))


def load_tokenizer_folder(folder: Path):
    import keras
    import keras_hub  # noqa: F401  (registers the tokenizer classes)

    tokenizer = keras.saving.deserialize_keras_object(json.loads((folder / "tokenizer.json").read_text()))
    tokenizer.load_preset_assets(str(folder))
    return tokenizer


def special_ids(tokenizer) -> dict[str, int]:
    """Start, end and padding token ids ([CLS], [SEP], [PAD] for BERT)."""
    return {
        "start": int(tokenizer.start_token_id),
        "end": int(tokenizer.end_token_id),
        "pad": int(tokenizer.pad_token_id),
    }


def token_counts(tokenizer, texts: list[str]) -> np.ndarray:
    """Tokens per text, the start and end tokens included."""
    tokens = tokenizer(texts)
    tokens = tokens.to_list() if hasattr(tokens, "to_list") else tokens
    return np.array([len(ids) for ids in tokens], dtype=np.int64) + 2


def choose_sequence_length(counts: np.ndarray, config) -> tuple[int, str]:
    """`data.sequence_length`, or the 99th percentile of training token counts (`token_counts`),
    rounded up to a multiple of 8 and capped at `data.max_sequence_length`.

    Returns:
        (length, a sentence reporting the choice and how many texts it truncates)
    """
    if config.sequence_length:
        length, how = config.sequence_length, "set by data.sequence_length"
    else:
        wanted = int(np.ceil(np.percentile(counts, PERCENTILE) / LENGTH_MULTIPLE) * LENGTH_MULTIPLE)
        length = max(LENGTH_MULTIPLE, min(wanted, config.max_sequence_length))
        how = f"{PERCENTILE}th percentile of training token counts, cap {config.max_sequence_length}"
    truncated = float((counts > length).mean())
    return length, (f"sequence length {length} ({how}); median text {int(np.median(counts))} tokens, "
                    f"{truncated:.1%} of training texts truncated")


def build_preprocessor(tokenizer, sequence_length: int):
    """A batch-of-strings -> model-inputs function for tf.data.

    Each batch is trimmed to its longest text (rounded up to a multiple of 8), so short
    texts do not pay for padding up to `sequence_length`.
    """
    import keras_hub
    import tensorflow as tf

    ids = special_ids(tokenizer)
    packer = keras_hub.layers.StartEndPacker(
        sequence_length=sequence_length,
        start_value=ids["start"],
        end_value=ids["end"],
        pad_value=ids["pad"],
        return_padding_mask=True,
    )

    def preprocess(texts):
        token_ids, padding_mask = packer(tokenizer(texts))
        longest = tf.reduce_max(tf.reduce_sum(tf.cast(padding_mask, tf.int32), axis=1))
        width = tf.minimum(
            (longest + LENGTH_MULTIPLE - 1) // LENGTH_MULTIPLE * LENGTH_MULTIPLE, sequence_length
        )
        token_ids = tf.cast(token_ids[:, :width], tf.int32)
        return {
            "token_ids": token_ids,
            "padding_mask": tf.cast(padding_mask[:, :width], tf.int32),
            "segment_ids": tf.zeros_like(token_ids),
        }

    return preprocess


def describe(tokenizer, preset: str) -> dict:
    """What predict/export need to rebuild the same tokenization."""
    return {
        "preset": preset,
        "tokenizer": type(tokenizer).__name__,
        "lowercase": bool(getattr(tokenizer, "lowercase", False)),
        "strip_accents": bool(getattr(tokenizer, "strip_accents", False)),
        "special_token_ids": special_ids(tokenizer),
    }
