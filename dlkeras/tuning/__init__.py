"""The hyperparameter search behind `python -m dlkeras.tune`: the search space as data (space),
KerasTuner around the training engine (search), the trial worker (worker) and what a search
leaves behind (report)."""
