"""The one exception type users see as a single line from the command line."""


class GanworksError(Exception):
    """A problem with the user's input (path, preset, checkpoint, data) that says how to fix it.

    The CLI prints ``error: <message>`` and exits non-zero instead of a traceback.
    """


class DataError(GanworksError):
    """A dataset that is missing, unreadable or of the wrong shape."""


class CheckpointError(GanworksError):
    """A checkpoint or run directory that is missing, truncated or corrupt."""


class ConfigError(GanworksError):
    """An unknown preset, an unknown ``--set`` key or a value of the wrong type."""


class TrainingDiverged(GanworksError):
    """A NaN or Inf loss; the last good checkpoint is left intact."""


class Interrupted(GanworksError):
    """A run stopped by a second signal; ``exit_code`` is the signal's (130 for SIGINT, 143 for SIGTERM)."""

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class MissingExtra(GanworksError):
    """An optional dependency a command needs is not installed; the message names the extra to install."""
