"""Error classes, each with the exit code the command line reports for it.

Exit 1 means "the answer is no" (as for diff, grep and pytest): a CI job can tell
a wrong gradient (1) from a wrong command line (2), a failing computation (3) and
a bug in gradcli (70). stdout that cannot be written (a full disk, a closed
descriptor) is 74; a reader that closed the pipe, 141 (as for shell tools).
Only ``gradcli.cli.main`` turns these into output.
"""

from __future__ import annotations


class GradcliError(Exception):
    """Base class. Unexpected: a bug in gradcli (EX_SOFTWARE)."""

    exit_code = 70

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class CheckFailed(GradcliError):
    """--check or --expect-*: the numbers disagree."""

    exit_code = 1


class UsageError(GradcliError):
    """Bad option, malformed expression or value, unknown name, missing file."""

    exit_code = 2


class EvaluationError(GradcliError):
    """Shapes do not align, size limits, the user's function raised."""

    exit_code = 3


class OutputError(GradcliError):
    """stdout cannot be written: a full disk, a closed descriptor (EX_IOERR)."""

    exit_code = 74
