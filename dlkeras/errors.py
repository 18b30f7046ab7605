"""The exceptions a user can cause; commands print their message instead of a traceback."""


class DlkerasError(Exception):
    """Base class: a problem with input the user controls, with a message saying what to do."""


class ConfigError(DlkerasError):
    """A recipe, TOML file or `--set` override is wrong."""


class DataError(DlkerasError):
    """A data file or column is missing, malformed or unusable."""


class RunError(DlkerasError):
    """A run directory cannot be created, resumed or read."""
