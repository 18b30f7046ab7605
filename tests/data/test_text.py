import numpy as np
import pandas as pd
import pytest

from dlkeras import config, data
from dlkeras.errors import DataError

WORDS = ("late delayed cancelled lost bag refund rude crew great thanks seat wifi gate "
         "upgrade food lounge").split()


def text_recipe(path, *overrides):
    recipe = config.load_recipe("bert_tickets")
    return config.apply_overrides(recipe, [
        f"data.path={path}", "data.text_column=body", "data.label_column=queue",
        "model.preset=tiny_bert_random", "data.batch_size=8", *overrides,
    ])


def build(recipe):
    return data.build(recipe.data, recipe.train.seed, preset=recipe.model.preset)


def write_tickets(path, labels, rng=None, words=12):
    rng = rng or np.random.default_rng(0)
    bodies = [" ".join(rng.choice(WORDS, words)) + f" ticket {i}" for i in range(len(labels))]
    pd.DataFrame({"body": bodies, "queue": labels}).to_csv(path, index=False)
    return path


def test_pipeline_tokenizes_into_trimmed_batches(tmp_path):
    path = write_tickets(tmp_path / "t.csv", ["billing", "baggage"] * 32)
    datasets = build(text_recipe(path))
    info = datasets.info
    assert info.class_names == ("baggage", "billing") and info.num_classes == 2
    features, labels = next(iter(datasets.train))
    assert set(features) == {"token_ids", "padding_mask", "segment_ids"}
    width = features["token_ids"].shape[1]
    assert width % 8 == 0 and width <= info.preprocessing["sequence_length"]
    ids = np.asarray(features["token_ids"])
    assert (ids[:, 0] == 101).all()  # [CLS]
    assert labels.shape == (8, 2)
    assert info.preprocessing["lowercase"] and info.preprocessing["strip_accents"]
    assert any("sequence length" in note for note in info.notes)


def test_one_packer_trace_tokenizes_every_split_as_separate_traces_do():
    """The packer graph a data build makes is traced once, then packs evaluation texts of any
    count and feeds the training pipeline, with the values separate traces give."""
    import tensorflow as tf

    from dlkeras.data import tokenize

    tokenizer = tokenize.load_tokenizer("tiny_bert_random")
    packer = tokenize.packer_graph(tokenizer, 16)
    rng = np.random.default_rng(0)
    for count in (1, 40):
        texts = [" ".join(rng.choice(WORDS, rng.integers(1, 20))) for _ in range(count)]
        shared, own = (tokenize.pack_texts(tokenizer, 16, texts, p) for p in (packer, None))
        assert shared.keys() == own.keys()
        assert all(np.array_equal(shared[key], own[key]) for key in own)
    batch = tf.data.Dataset.from_tensors({"text": texts, "width": [16] * len(texts)})
    shared, own = ([tf.nest.map_structure(np.asarray, inputs) for inputs in batch.map(
        tokenize.build_training_preprocessor(tokenizer, 16, p))] for p in (packer, None))
    assert all(np.array_equal(shared[0][key], own[0][key]) for key in own[0])
    assert packer.experimental_get_tracing_count() == 1


def test_raw_converter_gives_what_the_eager_tokenizer_gives_for_any_batch():
    """Predict's and the server's converter tokenizes in a graph: the same ids, masks and
    widths as the tokenizer and packer called eagerly, accents and emoji included."""
    from dlkeras.data import text, tokenize

    convert = text.build_raw_converter({"kind": "text", "preset": "tiny_bert_random",
                                        "sequence_length": 16})
    eager = tokenize.build_preprocessor(tokenize.load_tokenizer("tiny_bert_random"), 16)
    rng = np.random.default_rng(1)
    for count in (1, 3, 33):
        texts = [" ".join(rng.choice([*WORDS, "café", "naïve", "✈️"], rng.integers(1, 30)))
                 for _ in range(count)]
        got, want = convert(texts), eager(np.array(texts, dtype=object))
        assert got.keys() == want.keys()
        for key, value in want.items():
            assert got[key].dtype == np.asarray(value).dtype
            assert np.array_equal(got[key], np.asarray(value)), key


def test_sequence_length_follows_the_data_and_its_cap(tmp_path):
    rng = np.random.default_rng(1)
    path = write_tickets(tmp_path / "long.csv", ["a", "b"] * 20, rng, words=300)
    datasets = build(text_recipe(path, "data.max_sequence_length=64"))
    assert datasets.info.preprocessing["sequence_length"] == 64
    assert any("100.0% of training texts truncated" in n for n in datasets.info.notes)
    features, _ = next(iter(datasets.train))
    assert features["token_ids"].shape[1] == 64
    short = write_tickets(tmp_path / "short.csv", ["a", "b"] * 20, rng, words=3)
    assert build(text_recipe(short)).info.preprocessing["sequence_length"] == 8  # 3 words + "ticket N" + 2


def test_many_and_rare_classes(tmp_path):
    labels = [f"queue_{i:02d}" for i in range(55) for _ in range(3)] + ["rare_one", "rare_two", "rare_two"]
    path = write_tickets(tmp_path / "many.csv", labels)
    datasets = build(text_recipe(path))
    assert datasets.info.num_classes == 57
    assert {"rare_one", "rare_two"} <= set(datasets.info.class_names)
    assert set(np.unique(datasets.splits["train"].y)) == set(range(57))


def test_empty_and_non_text_rows_are_reported_by_row(tmp_path):
    path = write_tickets(tmp_path / "t.csv", ["x", "y"] * 20)
    frame = pd.read_csv(path)
    frame.loc[3, "body"] = "   "
    frame.loc[5, "body"] = np.nan
    frame.loc[8, "queue"] = np.nan
    frame.to_csv(path, index=False)
    expected = r"3 row\(s\) have an empty or non-text 'body'.*rows 5, 7, 10.*missing=drop"
    with pytest.raises(DataError, match=expected):
        build(text_recipe(path, "data.missing=error"))
    datasets = build(text_recipe(path))
    assert sum(datasets.info.split_sizes.values()) == 37
    assert any("rows 5, 7, 10" in note and "dropped" in note for note in datasets.info.notes)


def test_missing_columns_and_files(tmp_path):
    path = write_tickets(tmp_path / "t.csv", ["x", "y"] * 10)
    with pytest.raises(DataError, match=r"'message' not found.*'body'.*data\.text_column"):
        build(text_recipe(path, "data.text_column=message"))
    with pytest.raises(DataError, match=r"'label' not found.*data\.label_column"):
        build(text_recipe(path, "data.label_column=label"))
    with pytest.raises(DataError, match="does not exist"):
        build(text_recipe(tmp_path / "missing.jsonl"))


def test_repeated_texts_never_cross_splits(tmp_path):
    path = write_tickets(tmp_path / "t.csv", ["x", "y"] * 30)
    frame = pd.read_csv(path)
    copies = frame.iloc[:10].assign(body=lambda f: f["body"].str.upper() + "  ")
    pd.concat([frame, copies]).to_csv(path, index=False)
    datasets = build(text_recipe(path))
    assert any("10 repeated text(s) kept once" in n for n in datasets.info.notes)
    seen = [set(s.raw.astype(str)) for s in datasets.splits.values()]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])


def test_given_test_file_leakage_and_unknown_labels_are_reported(tmp_path):
    train_path = write_tickets(tmp_path / "train.csv", ["x", "y"] * 20)
    train = pd.read_csv(train_path)
    test = pd.DataFrame({
        "body": [train.body[0], "brand new complaint", "another one", "odd label"],
        "queue": ["x", "y", "x", "z"],
    })
    test.to_csv(tmp_path / "test.csv", index=False)
    datasets = build(text_recipe(train_path, f"data.test_path={tmp_path / 'test.csv'}"))
    assert datasets.info.split_sizes["test"] == 2
    notes = " ".join(datasets.info.notes)
    assert "1 test text(s) also appear in the training file" in notes
    assert "1 row(s) with label(s) not seen in training ['z']" in notes


def test_a_single_class_is_refused(tmp_path):
    path = write_tickets(tmp_path / "t.csv", ["only"] * 20)
    with pytest.raises(DataError, match="needs at least two"):
        build(text_recipe(path))


def test_bundled_tweets_are_the_airline_support_subset():
    from dlkeras.data.sources import load_airline_tweets

    frame = load_airline_tweets()
    assert len(frame) == 14638
    assert set(frame["sentiment"]) == {"negative", "neutral", "positive"}
    assert frame["text"].str.contains("@", regex=False).all()
    assert not frame["text"].str.contains("&amp;", regex=False).any()
