"""Text classification: a table with a text column and a label column, tokenized in tf.data.

Rows with empty or non-text values are reported (count and file rows) and dropped when
`data.missing=drop`; repeated texts are kept once so that no text sits in two splits; a given
test file (`data.test_path`) is checked for texts that also appear in training and for labels
training never saw. Tokenization uses the vocabulary of the recipe's `model.preset`: training
texts are tokenized in the tf.data pipeline, batch by batch as each epoch draws them; validation
and test texts once, when the data is built (`tokenize.pack_texts`), shared out between the
processes of a multi-worker run (`shares`). The sequence length is chosen from the training
texts unless set.
At inference `build_raw_converter` tokenizes raw texts with the same tokenizer and length.

Texts longer than `MAX_TEXT_CHARACTERS` are cut to that many characters before anything else
reads them (reported with their rows): the model reads at most `data.max_sequence_length`
tokens (a few thousand characters), while cleaning and tokenizing whole texts made one 10 MB
text among 64 short ones cost 50 s and 4.4 GB of memory to build, against 13 s and 1.1 GB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlkeras.data import (
    Datasets,
    checks,
    classification,
    fingerprint,
    pipeline,
    shares,
    sources,
    splits,
    tokenize,
)
from dlkeras.errors import DataError

MAX_TEXT_CHARACTERS = 100_000  # about 20k tokens: far beyond any sequence length a model reads


def clean(frame, config, where: str, notes: list[str]):
    """Checks columns, then reports (and with data.missing=drop, drops) unusable rows."""
    checks.check_columns(frame, [config.text_column], where, "data.text_column")
    checks.check_columns(frame, [config.label_column], where, "data.label_column")
    texts = frame[config.text_column]
    is_text = texts.map(lambda v: isinstance(v, str) and bool(v.strip()))
    bad = frame.index[~is_text | frame[config.label_column].isna()]
    if len(bad):
        message = (
            f"{where}: {len(bad)} row(s) have an empty or non-text {config.text_column!r} or no "
            f"{config.label_column!r} (file rows {checks.rows(bad)})"
        )
        if config.missing != "drop":
            raise DataError(message + "; fix them, or --set data.missing=drop to drop them")
        notes.append(message + "; dropped")
        frame = frame.drop(index=bad)
    frame = frame.assign(**{config.label_column: frame[config.label_column].astype(str)})
    frame = cut_long_texts(frame, config.text_column, where, notes)
    if config.max_examples:
        frame = frame.sample(n=min(config.max_examples, len(frame)), random_state=0)
    checks.check_not_empty(len(frame), where)
    return frame.reset_index(drop=True)


def cut_long_texts(frame, text_column: str, where: str, notes: list[str]):
    """Cuts texts to their first `MAX_TEXT_CHARACTERS` characters, with a note naming the rows."""
    long = frame.index[frame[text_column].str.len() > MAX_TEXT_CHARACTERS]
    if not len(long):
        return frame
    notes.append(f"{where}: {len(long)} text(s) longer than {MAX_TEXT_CHARACTERS:,} characters "
                 f"(file rows {checks.rows(long)}) were cut to their first {MAX_TEXT_CHARACTERS:,}; "
                 "the model reads only the first data.max_sequence_length tokens of a text")
    return frame.assign(**{text_column: frame[text_column].str.slice(0, MAX_TEXT_CHARACTERS)})


def deduplicate(frame, text_column: str, where: str, notes: list[str]):
    """Keeps the first of repeated texts (case and spacing ignored) so splits cannot share one."""
    keys = normalised(frame[text_column])
    repeated = keys.duplicated()
    if repeated.any():
        notes.append(f"{where}: {int(repeated.sum())} repeated text(s) kept once (avoids leakage)")
    return frame[~repeated].reset_index(drop=True)


def normalised(texts):
    return texts.str.lower().str.split().str.join(" ")


def split_frame(frame, config, seed: int, notes: list[str]) -> dict:
    """train/val/test frames: from `data.test_path` when given, else a stratified split."""
    labels = frame[config.label_column].to_numpy()
    if not config.test_path:
        index = classification.stratified_indices(labels, config, seed)
        return {name: frame.iloc[i] for name, i in index.items()}
    train_index, val_index, _ = splits.stratified_split(labels, config.val_fraction, 0.0, seed)
    test, where = sources.load_table(config.test_path), config.test_path
    test = clean(test, config, where, notes)
    train = frame.iloc[train_index]
    overlap = normalised(test[config.text_column]).isin(set(normalised(frame[config.text_column])))
    if overlap.any():
        notes.append(f"{where}: {int(overlap.sum())} test text(s) also appear in the training file "
                     "(leakage); they were removed from the test split")
        test = test[~overlap]
    return {"train": train, "val": frame.iloc[val_index], "test": test}


def drop_unknown_labels(parts: dict, label_column: str, class_names, notes: list[str]) -> dict:
    """Reports and removes evaluation rows whose label training never saw."""
    for name in ("val", "test"):
        labels = parts[name][label_column]
        unknown = ~labels.isin(class_names)
        if unknown.any():
            values = sorted(labels[unknown].unique())[: checks.MAX_LISTED]
            notes.append(f"{name} split: {int(unknown.sum())} row(s) with label(s) not seen in "
                         f"training {values}; excluded from evaluation")
            parts[name] = parts[name][~unknown]
    return parts


def build(config, seed: int, preset: str = "") -> Datasets:
    """Reads, checks, splits and tokenizes; see the module docstring."""
    frame, where = sources.load_frame(config)
    notes: list[str] = []
    frame = deduplicate(clean(frame, config, where, notes), config.text_column, where, notes)
    parts = split_frame(frame, config, seed, notes)
    class_names = classification.class_names_of(parts["train"][config.label_column].unique(), where)
    parts = drop_unknown_labels(parts, config.label_column, class_names, notes)
    labels = classification.encode_labels(
        {name: part[config.label_column].to_numpy() for name, part in parts.items()},
        class_names, where,
    )

    tokenizer = tokenize.load_tokenizer(preset)
    counts = shares.share(lambda share: tokenize.token_counts(tokenizer, share),
                          parts["train"][config.text_column].tolist(), "counting training tokens")
    length, note = tokenize.choose_sequence_length(counts, config)
    notes.append(note)
    if config.group_by_length:
        notes.append("training batches group texts of similar length (data.group_by_length)")
    texts = {name: np.array(part[config.text_column].tolist(), dtype=object)
             for name, part in parts.items()}
    info = classification.classification_info(
        labels,
        input_shape=(length,),
        preprocessing={"kind": "text", "sequence_length": length, **tokenize.describe(tokenizer, preset)},
        fingerprint=fingerprint(frame.to_csv(index=False), config.text_column, config.label_column),
        notes=notes,
    )
    packer = tokenize.packer_graph(tokenizer, length)  # traced once, for every split
    make_training = classification.array_datasets(
        config, seed, transform=tokenize.build_training_preprocessor(tokenizer, length, packer),
        train_lengths=counts if config.group_by_length else None,
        whole_batch=tokenize.with_batch_width(length),
    )

    def make(x, y, training: bool):
        if training:  # each batch padded to its longest text, all processes alike
            return make_training({"text": x.astype(str), "tokens": counts}, y, True)
        packed = shares.share(lambda share: tokenize.pack_texts(tokenizer, length, share, packer),
                              x.astype(str).tolist(), "tokenizing evaluation texts")
        return pipeline.make_dataset(packed, y, config.batch_size, training=False, seed=seed,
                                     transform=lambda inputs: tokenize.trim_batch(**inputs))

    return classification.assemble(texts, texts, labels, info, make)


def build_raw_converter(preprocessing: dict, folder: Path | None = None):
    """A function from a list of raw texts to token ids, padding mask and segment ids.

    The tokenizer is loaded once, here: from `folder`/tokenizer when the folder carries one (an
    export does), else from the preset named in the preprocessing. It tokenizes in a graph,
    traced on the first call (under a second; the server's warm-up pays it): keras-hub's
    tokenizer called eagerly takes a Python path that costs a served text model more than
    its runtime does.

    Args:
        preprocessing: the run's `preprocessing.json` (`preset`, `sequence_length`).
        folder: the run directory or export folder, or None.
    """
    tokenizer = load_run_tokenizer(preprocessing, folder)
    preprocess = tokenize.graph(tokenize.build_preprocessor(tokenizer, preprocessing["sequence_length"]))

    def convert(texts):
        texts = [str(t)[:MAX_TEXT_CHARACTERS] for t in texts]
        if not texts or not all(t.strip() for t in texts):
            raise DataError("every text to classify must be non-empty")
        batch = preprocess(np.array(texts, dtype=str))
        return {name: np.asarray(value) for name, value in batch.items()}

    return convert


def load_run_tokenizer(preprocessing: dict, folder: Path | None):
    """The tokenizer of a run or export: `folder`/tokenizer when the folder carries one (an
    export does), else the preset named in the preprocessing."""
    source = preprocessing["preset"]
    if folder and (Path(folder) / "tokenizer").is_dir():
        source = str(Path(folder) / "tokenizer")
    return tokenize.load_tokenizer(source)


def build_raw_signature(preprocessing: dict, folder: Path | None = None):
    """The SavedModel's raw-input signature: `text` strings in, tokenized in the graph by the
    same tokenizer and packer as `build_raw_converter` (TensorFlow Text ops).

    Args:
        preprocessing: the run's `preprocessing.json` (`preset`, `sequence_length`).
        folder: the export folder holding the tokenizer, or None for the preset's.
    """
    import tensorflow as tf

    from dlkeras.data import raw_graph
    from dlkeras.data.raw import pick

    tokenizer = load_run_tokenizer(preprocessing, folder)
    tokenizer(["built before export"])  # a Keras layer must be built to be saved
    preprocess = tokenize.build_preprocessor(tokenizer, preprocessing["sequence_length"])

    def model_inputs(raw):
        texts = tf.strings.substr(raw["text"], 0, MAX_TEXT_CHARACTERS, unit="UTF8_CHAR")
        empty = tf.equal(tf.strings.length(tf.strings.strip(texts)), 0)
        with tf.control_dependencies([tf.debugging.assert_equal(
                tf.reduce_any(empty), False, message="every text to classify must be non-empty")]):
            return preprocess(tf.identity(texts))

    def feed(split, index):
        return {"text": np.array([str(t) for t in pick(split.raw, index)], dtype=object)}

    return raw_graph.RawSignature(
        spec={"text": tf.TensorSpec([None], tf.string, name="text")},
        model_inputs=model_inputs,
        outputs=raw_graph.classification_outputs(preprocessing["class_names"]),
        feed=feed,
        comparable=raw_graph.probabilities,
        trackables=[tokenizer],
    )
