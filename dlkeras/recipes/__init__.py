"""The bundled recipes, by name. Each module holds RECIPE (a config.Recipe) and SMOKE, the
overrides that make it finish in seconds for tests."""

RECIPES = {
    "bert_tickets": "dlkeras.recipes.bert_tickets",
    "cnn_digits": "dlkeras.recipes.cnn_digits",
    "effnet_defects": "dlkeras.recipes.effnet_defects",
    "lstm_sales": "dlkeras.recipes.lstm_sales",
    "mlp_churn": "dlkeras.recipes.mlp_churn",
}
