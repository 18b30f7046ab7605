"""The training engine: backend and precision set-up, optimizers and schedules, callbacks,
discriminative rates, the feature cache, the stage loop and one whole run (`run.train_recipe`).

Modules here import Keras; import them after the backend is chosen (`backend.select_backend`).
"""
