"""dlkeras: Keras 3 recipes that train, evaluate and export real models on any backend.

The Python API (`dlkeras.api`) is available here: `dlkeras.load_recipe`, `dlkeras.fit`,
`dlkeras.Run`, `dlkeras.load_predictor`, ... It loads on first use, so `import dlkeras` imports
neither Keras nor TensorFlow and the commands' `--help` stays fast.
"""

from dlkeras.errors import ConfigError, DataError, DlkerasError, RunError

__version__ = "0.1.0"

# names served by dlkeras.api, imported when first asked for
_API = ("list_recipes", "load_recipe", "smoke_overrides", "recipe_changes", "example_data", "fit",
       "Run", "Predictor", "load_predictor")

__all__ = [*_API, "ConfigError", "DataError", "DlkerasError", "RunError", "__version__"]


def __getattr__(name: str):
    if name in _API:
        from dlkeras import api

        return getattr(api, name)
    raise AttributeError(f"module 'dlkeras' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
