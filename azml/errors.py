"""The error every ``azml`` layer raises for input it refuses, and the exit
codes of the whole ``azml`` command: one table, so a code means the same in
every command and domain code can raise with one without importing the CLI."""

from __future__ import annotations


class ProblemsError(Exception):
    """Refused input: ``problems`` holds one line per problem, each naming its
    key or option; the message is those lines, joined by ``separator``.
    Every error that carries several problems is one of these."""

    separator = "\n"

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(self.separator.join(problems))


# --- the exit codes of every ``azml`` command ----------------------------------

EXIT_OK = 0
#: A failure of the run itself (the store or the file system refused).
EXIT_PROGRAM_ERROR = 1
#: ``azml release advance`` / ``status``: the verdict or the stack refused the move.
EXIT_REFUSED = 1
#: ``azml release validate``: the batch failed its checks.
EXIT_FAILED = 1
#: ``azml env check``: the environment does not match the pins.
EXIT_MISMATCH = 1
#: Bad input: an option, a stack file, a data file.
EXIT_INVALID_INPUT = 2
#: ``azml drift``: a feature is over its threshold.
EXIT_DRIFT = 3
#: ``azml retrain check``: retraining is due.
EXIT_RETRAIN = 4
#: ``azml drift`` / ``azml retrain check``: too few samples to tell.
EXIT_INCONCLUSIVE = 5


class CommandError(Exception):
    """A refusal or failure whose message is one line for the user, with the
    exit code it ends the command with. Raised below the command layer (where
    no exit code is chosen) and turned into ``error: <message>`` by
    :class:`azml.cli.common.ErrorGroup` or by the command itself."""

    exit_code = EXIT_PROGRAM_ERROR

    @property
    def lines(self) -> list[str]:
        """What the user reads, each line as ``error: <line>``: the message."""
        return [str(self)]


class CommandErrors(CommandError):
    """A command that cannot go on for one or more reasons: ``lines`` and the
    ``exit_code`` chosen where they were found (the message joins the lines)."""

    def __init__(self, exit_code: int, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.exit_code = exit_code
        self._lines = list(lines)

    @property
    def lines(self) -> list[str]:
        return list(self._lines)
