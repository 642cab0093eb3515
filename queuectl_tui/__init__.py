"""queuectl: a persistent queue of shell-command jobs with a terminal console."""

__version__ = "0.1.0"
