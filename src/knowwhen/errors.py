"""The exceptions knowwhen raises for bad input. The CLI prints them as one line and exits 2."""


class KnowwhenError(Exception):
    """Base class: a problem with the user's input, files or configuration, not a bug."""


class ConfigError(KnowwhenError):
    """A configuration value or file is invalid."""


class DataError(KnowwhenError):
    """A dataset cannot be read as asked: wrong format, corrupt file, inconsistent contents."""


class CheckpointError(KnowwhenError):
    """A run directory is missing, foreign, incomplete or from a newer knowwhen."""
