"""Model factories: `build(model_config, data_info) -> keras.Model` (uncompiled).

Layers whose name starts with "head" form the task head; stage `trainable="head"` freezes the
rest.
"""

from __future__ import annotations

import importlib
import json
import re
import warnings
import zipfile
from pathlib import Path

from dlkeras.archives import check_zip
from dlkeras.errors import ConfigError, RunError

MODELS = {
    "bert_classifier": "dlkeras.models.bert_classifier",
    "cnn": "dlkeras.models.cnn",
    "efficientnet_lite0": "dlkeras.models.efficientnet_lite",
    "gru": "dlkeras.models.sequence",
    "keras_application": "dlkeras.models.keras_application",
    "lstm": "dlkeras.models.sequence",
    "mlp": "dlkeras.models.mlp",
    "temporal_cnn": "dlkeras.models.sequence",
    "transformer_encoder": "dlkeras.models.sequence",
}

# factory -> the module whose `check_config(model_config)` refuses settings it cannot build; each
# imports no backend (`validate` runs before the backend is chosen)
CONFIG_CHECKS = {"efficientnet_lite0": "dlkeras.models.efficientnet_lite"}


def build(model_config, data_info):
    """Calls the factory named by `model.name`.

    Raises:
        ConfigError: no factory has that name.
    """
    if model_config.name not in MODELS:
        raise ConfigError(
            f"model.name={model_config.name!r} is not a model factory; choose one of "
            f"{sorted(MODELS)}"
        )
    return importlib.import_module(MODELS[model_config.name]).build(model_config, data_info)


def check(model_config) -> None:
    """Raises ConfigError for a setting the factory of `model.name` cannot build (`CONFIG_CHECKS`),
    before any data is read and before a backend is chosen (`validate`)."""
    if model_config.name in CONFIG_CHECKS:
        importlib.import_module(CONFIG_CHECKS[model_config.name]).check_config(model_config)


# Modules, besides the factories, that register classes a saved model can name: layers, and the
# optimizers in the compile config of a head trained on its own and nested in the model (Keras
# compiles a nested model from its config even when the outer one is loaded uncompiled).
REGISTERING = ("dlkeras.models.layers", "dlkeras.engine.discriminative", "dlkeras.engine.fused_adam")


def load_inference_model(path):
    """A saved `.keras` model for inference: safe mode, no optimizer, every factory's custom
    layers and dlkeras' optimizers registered first (`REGISTERING`).

    Before Keras opens the file, the zip archive is checked (`archives.check_zip`: no member
    path outside the archive, no decompression bomb) and its config is searched for Lambda
    layers. Layer classes are looked up only among Keras' own and dlkeras' registered ones
    (Keras imports no module outside its own packages): a class the file names but neither
    defines is refused.

    Raises:
        RunError: the file is missing, corrupt or truncated, a hostile archive, not a model
            dlkeras can rebuild (unknown layer classes), or holds code (Lambda layers) that
            safe mode refuses; the message names the file.
    """
    import keras

    path = Path(path)
    lambdas = _lambda_layers(_archive_config(path))
    if lambdas:
        raise RunError(_refused(path, f"Lambda layer(s) {', '.join(lambdas)}"))
    for module in sorted(set(MODELS.values())) + list(REGISTERING):
        importlib.import_module(module)
    try:
        with warnings.catch_warnings():  # compile=False: the optimizer is not wanted, not missing
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises ValueError, TypeError, OSError... for bad files
        if "safe_mode" in str(error):  # Keras refused to deserialize code
            raise RunError(_refused(path, "Python code (a lambda or function)")) from None
        unknown = _UNKNOWN_CLASS.findall(str(error))
        if unknown:
            raise RunError(_unknown_classes(path, unknown)) from None
        raise RunError(_corrupt(path, error)) from None


def _archive_config(path: Path) -> dict:
    """config.json of a .keras archive (a zip file)."""
    if not path.is_file():
        raise RunError(f"model file {path} does not exist; train the run first (python -m dlkeras.train)")
    check_zip(path, RunError, "use a model file saved by Keras (model.save), e.g. one a dlkeras "
              "run or export wrote")
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json"))
    except (OSError, zipfile.BadZipFile, KeyError, ValueError, EOFError) as error:
        raise RunError(_corrupt(path, error)) from None


def _lambda_layers(node) -> list[str]:
    """Names of the Lambda layers anywhere in a model config (nested models included)."""
    if isinstance(node, list):
        return [name for item in node for name in _lambda_layers(item)]
    if not isinstance(node, dict):
        return []
    found = [str(node.get("config", {}).get("name", "?"))] if node.get("class_name") == "Lambda" else []
    return found + [name for value in node.values() for name in _lambda_layers(value)]


def _refused(path: Path, what: str) -> str:
    return (f"{path} holds {what}, and dlkeras never loads code from model files (Keras safe mode); "
            "rebuild the model without Lambda layers, e.g. train it with a dlkeras recipe "
            "(python -m dlkeras.train --recipe NAME) and export that run")


# Keras' message for a class neither it nor a registration defines
_UNKNOWN_CLASS = re.compile(r"Could not (?:locate|deserialize) (?:class |function )?'([^']+)'")


def _unknown_classes(path: Path, names: list[str]) -> str:
    listed = ", ".join(map(repr, sorted(set(names))))
    return (f"{path} uses layer class(es) {listed} that neither Keras nor dlkeras defines; "
            "dlkeras loads only Keras' and its own layers and never imports code a model file "
            "names. Rebuild the model from Keras layers or a dlkeras recipe "
            "(python -m dlkeras.train --recipe NAME) and export that run")


def _corrupt(path: Path, error: Exception) -> str:
    cause = " ".join(str(error).split())[:200]
    return (f"{path} is corrupt, truncated or not a dlkeras model ({type(error).__name__}: {cause}); "
            "train the run again (python -m dlkeras.train), or for an exported copy export the run "
            "again (python -m dlkeras.export)")
