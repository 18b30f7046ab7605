"""The compiled Keras call an export's gate reference and latency table share."""

import keras
import numpy as np

from dlkeras.export import latency


class Traced(keras.layers.Layer):
    """Sums each example's values; counts the traces of the graphs it is called in."""

    traces = 0

    def call(self, x):
        Traced.traces += 1
        return keras.ops.sum(keras.ops.reshape(x, (keras.ops.shape(x)[0], -1)), axis=1, keepdims=True)


def test_the_compiled_call_is_traced_once_for_every_batch_size():
    inputs = keras.Input((6, 6, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(Traced()(inputs)))
    images = np.random.default_rng(0).normal(size=(32, 6, 6, 3)).astype("float32")
    before = Traced.traces
    compiled = latency.compiled_call(model, images)
    outputs = {size: compiled(images[:size]) for size in (32, 7, 1)}
    assert Traced.traces - before == 1
    for size, output in outputs.items():
        np.testing.assert_allclose(output, model.predict_on_batch(images[:size]), rtol=1e-5, atol=1e-5)


def test_texts_of_another_width_trace_it_once_more_for_any_width():
    tokens = keras.Input((None,), name="token_ids")
    mask = keras.Input((None,), name="padding_mask")
    model = keras.Model({"token_ids": tokens, "padding_mask": mask},
                        keras.layers.Concatenate()([Traced()(tokens), Traced()(mask)]))

    def batch(rows, width):
        return {name: np.ones((rows, width), "float32") for name in ("token_ids", "padding_mask")}

    before = Traced.traces
    compiled = latency.compiled_call(model, batch(32, 24))
    outputs = [compiled(batch(rows, width)) for rows, width in ((32, 24), (5, 24), (1, 8), (1, 16), (3, 40))]
    assert (Traced.traces - before) // 2 == 2  # two layers trace per graph: widths 24, then any
    assert [output[0].tolist() for output in outputs] == [[w, w] for w in (24.0, 24.0, 8.0, 16.0, 40.0)]


def test_warm_up_calls_each_input_shape_before_timing_and_at_least_the_warmup_count():
    calls = []

    def predict(x):
        calls.append(np.shape(x))

    same = [np.zeros((1, 3))] * 8
    latency.interleaved_ms({"one": predict}, same, budget=0.0, warmup=2)
    assert len(calls) == 2 + 5  # two warm-up calls, then the five timed rounds
    calls.clear()
    widths = [np.zeros((1, w)) for w in (3, 5, 3, 7, 5)]
    latency.interleaved_ms({"one": predict}, widths, budget=0.0, warmup=2)
    assert calls[:3] == [(1, 3), (1, 5), (1, 7)] and len(calls) == 3 + 5
