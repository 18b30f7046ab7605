"""The text classifier: exact-GELU encoder, pooling, nesting, and the bundled MiniLM."""

import json

import numpy as np
import pytest

from dlkeras import config, models
from dlkeras.data import DataInfo
from dlkeras.errors import ConfigError
from dlkeras.models import bert_classifier

# all-MiniLM-L6-v2 sentence embeddings (mean-pooled, L2-normalised; first 6 of 384 values)
# recorded from the original model with Hugging Face transformers (torch).
SENTENCES = [
    "My flight was cancelled and nobody at the gate could help.",
    "Thanks, the crew was wonderful!",
    "Où est mon bagage? Le café était très bon.",
]
REFERENCE_TOKEN_IDS = [
    [101, 2026, 3462, 2001, 8014, 1998, 6343, 2012, 1996, 4796, 2071, 2393, 1012, 102, 0],
    [101, 4283, 1010, 1996, 3626, 2001, 6919, 999, 102, 0, 0, 0, 0, 0, 0],
    [101, 15068, 9765, 12256, 4524, 4270, 1029, 3393, 7668, 27859, 4183, 24403, 14753, 1012, 102],
]
REFERENCE_EMBEDDINGS = [
    [0.080702, 0.023193, 0.010659, 0.045474, 0.024734, -0.018236],
    [-0.081582, 0.016704, -0.004946, 0.002128, -0.028159, -0.020941],
    [-0.003789, 0.052159, 0.016363, -0.019289, 0.052026, 0.015845],
]


def build(preset, num_classes=3):
    info = DataInfo(task="classification", input_shape=(16,), num_classes=num_classes)
    return models.build(config.ModelConfig(name="bert_classifier", preset=preset, dropout=0.0), info)


def inputs(ids):
    ids = np.asarray(ids, dtype="int32")
    return {"token_ids": ids, "padding_mask": (ids > 0).astype("int32"), "segment_ids": np.zeros_like(ids)}


@pytest.mark.slow
def test_bundled_minilm_matches_the_original_model():
    from dlkeras.data import tokenize

    tokenizer = tokenize.load_tokenizer("all_minilm_l6_v2")
    preprocess = tokenize.build_preprocessor(tokenizer, 15)
    batch = preprocess(np.array(SENTENCES))
    assert np.asarray(batch["token_ids"]).tolist() == REFERENCE_TOKEN_IDS  # accents stripped
    model = build("all_minilm_l6_v2")
    embeddings = np.asarray(model.get_layer("backbone")(inputs(REFERENCE_TOKEN_IDS)))
    embeddings = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    assert np.abs(embeddings[:, :6] - np.array(REFERENCE_EMBEDDINGS)).max() < 5e-5


def test_encoder_config_uses_exact_gelu():
    encoder = bert_classifier.load_encoder("tiny_bert_random")
    text = json.dumps(encoder.get_config())
    assert bert_classifier.APPROXIMATE_GELU not in text
    assert '"dlkeras>gelu_erf"' in text


def test_exact_gelu_matches_keras_and_computes_16_bit_inputs_in_float32():
    import keras

    from dlkeras.models.layers import gelu_erf

    x = np.linspace(-6, 6, 4001, dtype="float32")
    exact = np.asarray(keras.activations.gelu(x, approximate=False))
    # 1 + erf(x) loses the far negative tail that erfc keeps: about 5e-7 there
    np.testing.assert_allclose(np.asarray(gelu_erf(x)), exact, atol=1e-6)
    low = keras.ops.cast(x, "bfloat16")
    out = gelu_erf(low)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    in_float32 = keras.ops.cast(gelu_erf(keras.ops.cast(low, "float32")), "bfloat16")
    np.testing.assert_array_equal(np.asarray(keras.ops.cast(out, "float32")),
                                  np.asarray(keras.ops.cast(in_float32, "float32")))


def test_tiny_classifier_shapes_nesting_and_gradients():
    import tensorflow as tf

    model = build("tiny_bert_random", num_classes=4)
    assert [layer.name for layer in model.layers][-2:] == ["backbone", "head"]
    x = inputs([[101, 2026, 3462, 102, 0, 0], [101, 4283, 102, 0, 0, 0]])
    y = np.eye(4, dtype="float32")[[1, 3]]
    with tf.GradientTape() as tape:
        probabilities = model(x, training=True)
        loss = tf.keras.losses.categorical_crossentropy(y, probabilities)
    assert probabilities.shape == (2, 4)
    gradients = tape.gradient(loss, model.trainable_weights)
    missing = [w.path for w, g in zip(model.trainable_weights, gradients) if g is None]
    assert not missing
    assert not any("pooled_dense" in w.path for w in model.weights)  # unused [CLS] pooler left out


def test_padding_does_not_change_the_prediction():
    model = build("tiny_bert_random")
    short = np.asarray(model(inputs([[101, 2026, 3462, 102]]), training=False))
    padded = np.asarray(model(inputs([[101, 2026, 3462, 102, 0, 0, 0, 0]]), training=False))
    assert np.allclose(short, padded, atol=1e-5)


def test_saved_model_reloads_in_safe_mode(tmp_path):
    import keras

    model = build("tiny_bert_random")
    x = inputs([[101, 2026, 3462, 102]])
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert np.allclose(np.asarray(model(x)), np.asarray(again(x)), atol=1e-6)


def test_unknown_preset_offline_gives_a_clear_error():
    with pytest.raises(ConfigError, match=r"(?s)cannot load model.preset='no_such_preset'.*local preset"):
        build("no_such_preset")
