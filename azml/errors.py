"""The error every ``azml`` layer raises for input it refuses."""

from __future__ import annotations


class ProblemsError(Exception):
    """Refused input: ``problems`` holds one line per problem, each naming its
    key or option; the message is those lines."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))
