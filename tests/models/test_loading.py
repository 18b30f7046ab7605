"""`load_inference_model` in a fresh interpreter, as `dlkeras.export`, `predict` and `serve` use it."""

import os
import subprocess
import sys

from support import ROOT


def test_a_fresh_process_loads_a_model_whose_nested_head_was_compiled_by_dlkeras(tmp_path):
    """bert_tickets and effnet_defects train their head alone on cached features, then nest it in
    the model; Keras rebuilds the head's optimizer from its compile config even for an
    uncompiled load, so dlkeras' optimizer classes must be registered before the file is read."""
    import keras

    from dlkeras.config import TrainConfig
    from dlkeras.engine import optimizers

    features = keras.Input((4,), name="head_features")
    head = keras.Model(features, keras.layers.Dense(2, name="head_output")(features), name="head")
    head.compile(optimizer=optimizers.build_optimizer(TrainConfig(), 1e-3, 10), loss="mse")
    inputs = keras.Input((3,), name="features")
    model = keras.Model(inputs, head(keras.layers.Dense(4, name="backbone")(inputs)), name="nested")
    model.save(tmp_path / "model.keras")
    assert "dlkeras" in head.get_compile_config()["optimizer"]["module"]  # what the file names

    script = ("import sys; from dlkeras.models import load_inference_model; "
              "print(load_inference_model(sys.argv[1]).name)")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "model.keras")], cwd=ROOT,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0 and result.stdout.split()[-1] == "nested", result.stderr[-2000:]
