"""Hyperparameter search: `python -m dlkeras.tune` (command in __main__), the search space as
data (space), KerasTuner around the training engine (search), the trial worker (worker) and
what a search leaves behind (report)."""
