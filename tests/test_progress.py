"""dlkeras.progress: loops report how far they are, commands end with a table of their steps."""

import io
import time
from types import SimpleNamespace

import numpy as np
import pytest

from dlkeras import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(autouse=True)
def no_steps_left_over():
    progress.reset_steps()
    yield
    progress.reset_steps()


def test_track_yields_every_item_unchanged():
    items = [3, "a", None, {"x": 1}, (1, 2)]
    assert list(progress.track(items, what="items", stream=io.StringIO())) == items
    assert list(progress.track(iter(items), what="items", stream=Terminal())) == items


def test_a_stream_that_is_not_a_terminal_gets_plain_lines_with_counts_and_time_left():
    stream = io.StringIO()
    batches = [np.zeros((4, 3))] * 5
    for _ in progress.track(batches, total=20, what="caching backbone features", size=progress.rows_in,
                            interval=0.0, stream=stream):
        pass
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0].startswith("caching backbone features: 4/20 (20%), 0 s, about ")
    assert lines[0].endswith(" s left")
    assert "16/20 (80%)" in lines[3]
    assert lines[-1].startswith("caching backbone features: 20/20 in ")


def test_a_fast_loop_writes_only_its_final_line():
    stream = io.StringIO()
    assert sum(progress.track(range(100_000), what="counting", stream=stream)) == sum(range(100_000))
    assert stream.getvalue().splitlines() == [stream.getvalue().strip()]
    assert stream.getvalue().startswith("counting: 100000/100000 in ")


def test_a_terminal_gets_a_tqdm_bar():
    stream = Terminal()
    list(progress.track(range(50), what="counting", stream=stream))
    assert "counting" in stream.getvalue() and "50/50" in stream.getvalue()


def test_describe_without_total_and_long_durations():
    assert progress.describe("files", 7, None, 3.0) == "files: 7, 3 s"
    assert progress.describe("files", 7, None, 3.0, finished=True) == "files: 7 in 3 s"
    assert progress.describe("trials ended", 3, 20, 600.0) == \
        "trials ended: 3/20 (15%), 10.0 min, about 56.7 min left"
    assert progress.duration(7200) == "2.0 h"
    assert progress.rows_in({"token_ids": np.zeros((6, 8)), "padding_mask": np.zeros((6, 8))}) == 6


def test_steps_are_recorded_in_order_and_printed_as_a_markdown_table(capsys):
    with progress.step("data"):
        time.sleep(0.02)
    progress.record("stage head", 3.0)
    progress.record("report", 1.0)
    names = [name for name, _ in progress.steps()]
    assert names == ["data", "stage head", "report"]
    assert progress.steps()[0][1] >= 0.02
    progress.print_step_table()
    table = capsys.readouterr().out.strip().splitlines()
    assert table[0] == "| step | seconds | share |"
    assert table[2].startswith("| stage head | 3.0 | 75% |")
    assert table[3].startswith("| report | 1.0 | 25% |")
    assert table[4].startswith("| total (1 steps under 1 s not shown) | 4.0 |")
    assert progress.steps() == []  # the next command starts afresh


def test_a_step_that_raises_is_still_timed():
    with pytest.raises(ValueError), progress.step("gate: onnx"):
        raise ValueError("bad artifact")
    assert [name for name, _ in progress.steps()] == ["gate: onnx"]


def test_the_feature_cache_shows_its_progress(capsys):
    import keras

    from dlkeras.engine import feature_cache

    inputs = keras.Input((4,), name="features")
    backbone = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense")], name="backbone")
    head = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="head_dense")], name="head")
    model = keras.Model(inputs, head(backbone(inputs)), name="tiny")

    class Batches:
        def __init__(self, x, y):
            self.x, self.y = x, y

        def as_numpy_iterator(self):
            return ((self.x[i:i + 8], self.y[i:i + 8]) for i in range(0, len(self.y), 8))

    rng = np.random.default_rng(0)
    parts = {name: (rng.normal(size=(n, 4)).astype("float32"), np.arange(n) % 2)
             for name, n in (("train", 20), ("val", 9), ("test", 8))}
    datasets = SimpleNamespace(splits={name: SimpleNamespace(y=y) for name, (_, y) in parts.items()},
                               **{name: Batches(x, y) for name, (x, y) in parts.items()})
    features = feature_cache.extract(model, datasets, batch_size=8, augment=False)
    expected = np.asarray(backbone.predict_on_batch(parts["val"][0]), dtype=np.float32)
    np.testing.assert_allclose(features.x["val"], expected, rtol=1e-6)
    err = capsys.readouterr().err
    assert "backbone features of train: 20/20 in " in err
    assert "backbone features of val: 9/9 in " in err and "\r" not in err
