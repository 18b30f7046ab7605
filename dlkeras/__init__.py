"""dlkeras: Keras 3 recipes that train, evaluate and export real models on any backend."""

__version__ = "0.1.0"
