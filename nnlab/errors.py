"""Errors a user can fix. The CLI prints them as one message and exits with code 2."""

from __future__ import annotations


class NnlabError(Exception):
    """A problem with the user's input: a config, a data file, a command-line value.

    Args:
        message: what is wrong and what would be accepted.
        source: the file (or command-line flag) the problem is in.
        line: 1-based line in ``source``, when known.
        key: dotted path of the offending config key, when there is one.
    """

    exit_code = 2

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None,
                 key: str | None = None):
        super().__init__(message)
        self.message = message
        self.source = source
        self.line = line
        self.key = key

    def __str__(self) -> str:
        where = ""
        if self.source:
            where = self.source + (f":{self.line}" if self.line else "") + ": "
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"


class ConfigError(NnlabError):
    """A config that cannot be run: bad YAML, schema violation, unknown name, model/data mismatch."""

    def __init__(self, message: str, *, problems: list[NnlabError] | None = None, **where):
        super().__init__(message, **where)
        self.problems = problems or []

    def __str__(self) -> str:
        if not self.problems:
            return super().__str__()
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [super().__str__()] + [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class DataError(NnlabError):
    """A dataset that cannot be loaded: missing, corrupt or of the wrong format."""


class RunNotFound(NnlabError):
    """A run folder, id or prefix that names no run."""


class RunEnded(NnlabError):
    """A run whose folder exists ended other than through its stages' own handling (a crash
    between stages, a stop outside them); its folder records the status and the message.

    Args:
        exit_code: 1 for a failure, 130/143 for a stop.
    """

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int = 1, **where):
        super().__init__(message, **where)
        self.exit_code = exit_code


class RunWriteError(RunEnded):
    """The run folder cannot be written (read-only or full disk). The run is marked failed where possible."""
