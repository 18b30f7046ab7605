"""Tokenization for text pipelines: the preset's tokenizer, sequence length, tf.data transform."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dlkeras import presets

LENGTH_MULTIPLE = 8
PERCENTILE = 99
PACK_CHUNK = 1024  # texts tokenized together by in_graph


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
    except Exception as error:  # keras-hub raises many types for missing/unreachable presets
        raise presets.load_failure(preset, error) from None
    if getattr(tokenizer, "lowercase", False) and hasattr(tokenizer, "strip_accents"):
        # read on every call (and by get_config), so set in place: loading the preset again
        # with strip_accents=True built its vocabulary a second time
        tokenizer.strip_accents = True
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
    """Tokens per text, the start and end tokens included (tokenized as `in_graph` does)."""
    import tensorflow as tf

    counts = in_graph(graph(lambda batch: tf.cast(tokenizer(batch).row_lengths(), tf.int64)), texts)
    return np.concatenate([np.zeros(0, np.int64), *counts]) + 2


def graph(function):
    """`function` (tensor ops on a batch of strings) as a graph function, traced on its first
    call for batches of any size."""
    import tensorflow as tf

    return tf.function(function, input_signature=[tf.TensorSpec([None], tf.string)])


def in_graph(function, texts: list[str], chunk: int = PACK_CHUNK) -> list:
    """`function` (a `graph`) on `chunk` texts at a time, as numpy.

    keras-hub tokenizers called eagerly take a pure-Python path, several times slower than
    their TensorFlow Text ops; in a graph they run those ops, as the training pipeline does,
    so every split is tokenized by the same code.
    """
    import tensorflow as tf

    texts = np.asarray(texts, dtype=str)
    return [tf.nest.map_structure(np.asarray, function(tf.constant(texts[start:start + chunk])))
            for start in range(0, len(texts), chunk)]


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


def build_packer(tokenizer, sequence_length: int):
    """A batch-of-strings -> (token_ids, padding_mask) function, both `sequence_length` wide:
    [CLS] tokens [SEP], cut or padded."""
    import keras_hub

    ids = special_ids(tokenizer)
    packer = keras_hub.layers.StartEndPacker(
        sequence_length=sequence_length,
        start_value=ids["start"],
        end_value=ids["end"],
        pad_value=ids["pad"],
        return_padding_mask=True,
    )
    return lambda texts: packer(tokenizer(texts))


def trim_batch(token_ids, padding_mask) -> dict:
    """Model inputs of one packed batch, trimmed to its longest text (`batch_width`), so
    short texts do not pay for padding up to the sequence length."""
    import tensorflow as tf

    longest = tf.reduce_max(tf.reduce_sum(tf.cast(padding_mask, tf.int32), axis=1))
    return trim_to(token_ids, padding_mask, batch_width(longest, tf.shape(token_ids)[1]))


def batch_width(longest, sequence_length):
    """The width a batch is padded to: its longest text in tokens, rounded up to a multiple
    of 8, at most the sequence length (tensors or numbers)."""
    import tensorflow as tf

    rounded = (longest + LENGTH_MULTIPLE - 1) // LENGTH_MULTIPLE * LENGTH_MULTIPLE
    return tf.minimum(tf.cast(rounded, tf.int32), tf.cast(sequence_length, tf.int32))


def trim_to(token_ids, padding_mask, width) -> dict:
    """Model inputs: packed `token_ids` and `padding_mask` cut to `width` columns."""
    import tensorflow as tf

    token_ids = tf.cast(token_ids[:, :width], tf.int32)
    return {
        "token_ids": token_ids,
        "padding_mask": tf.cast(padding_mask[:, :width], tf.int32),
        "segment_ids": tf.zeros_like(token_ids),
    }


def build_preprocessor(tokenizer, sequence_length: int):
    """A batch-of-strings -> model-inputs function for tf.data (`build_packer`, `trim_batch`)."""
    pack = build_packer(tokenizer, sequence_length)
    return lambda texts: trim_batch(*pack(texts))


def with_batch_width(sequence_length: int):
    """A function on whole training batches of {"text", "tokens"} (`token_counts`) that
    replaces "tokens" by the batch's "width" (`batch_width`) on every row.

    Applied before a multi-process run slices each global batch (`pipeline.make_dataset`'s
    `whole_batch`), so every process pads its slice to the same width: the processes compute
    one step together and their inputs must agree in shape.
    """
    import tensorflow as tf

    def widen(batch):
        width = batch_width(tf.reduce_max(batch["tokens"]), sequence_length)
        return {"text": batch["text"], "width": tf.fill(tf.shape(batch["tokens"]), width)}

    return widen


def build_training_preprocessor(tokenizer, sequence_length: int, packer=None):
    """A tf.data function from training batches of {"text", "width"} (`with_batch_width`) to
    model inputs padded to "width": what `build_preprocessor` gives for the whole batch.

    Args:
        packer: the `packer_graph` of this tokenizer and length, when one is at hand: the
            pipeline then calls its trace instead of tracing the tokenizer again.
    """
    pack = packer or build_packer(tokenizer, sequence_length)

    def preprocess(batch):
        return trim_to(*pack(batch["text"]), batch["width"][0])

    return preprocess


def packer_graph(tokenizer, sequence_length: int):
    """`pack_texts`' graph: one trace (0.4 s) packs every split it is given."""
    import tensorflow as tf

    pack = build_packer(tokenizer, sequence_length)
    return graph(lambda batch: tuple(tf.cast(part, tf.int32) for part in pack(batch)))


def pack_texts(tokenizer, sequence_length: int, texts: list[str], packer=None) -> dict[str, np.ndarray]:
    """`token_ids` and `padding_mask` (int32, `sequence_length` wide) of every text, packed as
    `build_packer` packs them in training; untrimmed (`trim_batch` trims).

    Args:
        packer: the `packer_graph` of this tokenizer and length, when one is at hand (traced).
    """
    packed = in_graph(packer or packer_graph(tokenizer, sequence_length), texts)
    empty = np.zeros((0, sequence_length), np.int32)
    return {"token_ids": np.concatenate([empty, *(ids for ids, _ in packed)]),
            "padding_mask": np.concatenate([empty, *(mask for _, mask in packed)])}


def describe(tokenizer, preset: str) -> dict:
    """What predict/export need to rebuild the same tokenization."""
    return {
        "preset": preset,
        "tokenizer": type(tokenizer).__name__,
        "lowercase": bool(getattr(tokenizer, "lowercase", False)),
        "strip_accents": bool(getattr(tokenizer, "strip_accents", False)),
        "special_token_ids": special_ids(tokenizer),
    }
