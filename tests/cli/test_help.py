"""Every command's --help at 80 columns: it renders, and its summary is one whole sentence.

The summary (a command's first help paragraph) is what ``azml --help`` and each
group's command list show; typer keeps a docstring's line breaks there, so a
summary written over several lines used to break mid-sentence in that list.
"""

from __future__ import annotations

import inspect
import os
import re

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from azml.cli import app

#: A summary fits on one line of the command list at 80 columns (name column and box included).
MAX_SUMMARY = 64
BOX = re.compile(r"[│╭╮╰╯─]")


def _commands(command=None, path=()):  # type: ignore[no-untyped-def]
    command = command or get_command(app)
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, (*path, name))


COMMANDS = list(_commands())


def _summary(command) -> str:  # type: ignore[no-untyped-def]
    return inspect.cleandoc(command.help or "").split("\n\n")[0]


def _plain(text: str) -> str:
    return " ".join(BOX.sub(" ", text).split())


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "azml" for p, _ in COMMANDS])
def test_help_renders_at_80_columns_with_a_one_sentence_summary(path: tuple[str, ...], command) -> None:  # type: ignore[no-untyped-def]
    summary = _summary(command)
    assert "\n" not in summary, f"summary over several lines: {summary!r}"
    assert summary[:1].isupper() and summary.endswith(".") and summary.count(". ") == 0, summary
    assert len(summary) <= MAX_SUMMARY, summary
    result = CliRunner().invoke(app, [*path, "--help"], env={**os.environ, "COLUMNS": "80", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert summary in _plain(result.output)  # nothing of it lost to markup or truncation
    for name, sub in getattr(command, "commands", {}).items():
        # each subcommand's summary whole on one line of the list
        assert any(re.search(rf"│ {re.escape(name)} +{re.escape(_summary(sub))} *│", line) for line in lines), name


def test_every_format_option_is_declared_the_one_way() -> None:
    """``--format/-f``: the same help wording naming exactly the accepted values,
    and an unsupported value refused by typer (exit 2, the values named)."""
    found = 0
    for path, command in COMMANDS:
        for param in getattr(command, "params", []):
            if "--format" not in getattr(param, "opts", []):
                continue
            found += 1
            assert param.opts == ["--format", "-f"], path
            match = re.fullmatch(r"Output format: ((?:\w+, )*\w+) or (\w+)\.", param.help or "")
            assert match, (path, param.help)
            values = [*match.group(1).split(", "), match.group(2)]
            assert getattr(param.default, "value", param.default) in values, path
            result = CliRunner().invoke(app, [*path, "--format", "yaml"], env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
            assert result.exit_code == 2, (path, result.output)
            assert "is not one of " + ", ".join(f"'{v}'" for v in values) in result.output, (path, result.output)
    assert found >= 12
