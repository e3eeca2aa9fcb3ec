"""The runs app's error for a stage that cannot do its work, shared by the stages and the runner."""


class StageError(RuntimeError):
    """A stage cannot do its work; the message says what is missing."""
