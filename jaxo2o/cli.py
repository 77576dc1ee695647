"""The command lines' bad input as one line: `one_line_errors()` turns what tyro would print as
a multi-line box (an unknown option, a value of the wrong type, a config's validation failing)
into a ConfigError whose message names the option, for the caller's usual
`error: <message>` on stderr and exit status 2.

It uses tyro's parse-error hook (`tyro._errors.on_parse_error`, private and experimental in the
pinned tyro 1.0.17; tests/test_cli_errors.py checks every case it handles). A kind of failure
not handled here keeps tyro's own box.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TypeVar

import tyro
from tyro import _errors

from jaxo2o.config import ConfigError


class _Rejected(Exception):
    """Raised from inside tyro by the hook; not a ValueError, so tyro's handlers let it pass."""


def _flag(arg) -> str:
    """How an argument is named: its flags ("--seeds"), or a positional's name ("folder")."""
    return arg.display_name()


def message(event: _errors.ParseErrorEvent) -> str | None:
    """One line naming the problem with the command line, or None (tyro's box is kept)."""
    if isinstance(event, _errors.InstantiationFailure):
        if event.argument is None:  # a config's validation: its message names the field
            return event.message
        arg = event.argument  # a value tyro could not convert to the field's type
        return f"{_flag(arg)}: expected {arg.lowered.metavar}; {event.message}"
    if isinstance(event, _errors.UnrecognizedArgs):
        options = [t for t in event.tokens if t.startswith("--")] or event.tokens
        what = "unknown option" if options[0].startswith("-") else "unexpected argument"
        return f"{what}{'s' if len(options) > 1 else ''} {' '.join(options)} (see --help)"
    if isinstance(event, _errors.InvalidChoice):
        return (
            f"{_flag(event.argument)}: unknown {event.value!r}; choose one of "
            f"{tuple(event.choices)}"
        )
    if isinstance(event, _errors.BadValue):
        if event.reason == "too_few_values":
            return f"{_flag(event.argument)}: expected {event.argument.lowered.metavar}"
        return f"{_flag(event.argument)}: takes no value, got {event.offending_value!r}"
    if isinstance(event, _errors.MissingArgs):
        names = [_flag(a.arg) for a in event.missing_arguments]
        return f"missing {', '.join(names)} (see --help)"
    if isinstance(event, _errors.MissingSubcommand):
        names = tuple(event.subcommand_spec.parser_from_name)
        return f"name a command, one of {names}"
    return None


def _hook(event: _errors.ParseErrorEvent) -> None:
    text = message(event)
    if text is not None:
        raise _Rejected(" ".join(text.split()))  # one line, whatever the message held


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Around `tyro.cli(...)`: bad input raises ConfigError("<option>: <problem>") instead of
    tyro printing its box and exiting. `--help` is unchanged."""
    try:
        with _errors.on_parse_error(_hook):
            yield
    except _Rejected as e:
        raise ConfigError(str(e)) from None


T = TypeVar("T")


def parse_or_exit(cls: type[T], argv: list[str] | None, description: str | None) -> T:
    """`tyro.cli(cls)` for the study scripts: bad input prints one `error: ...` line and exits
    with status 2 (the main command lines return that status themselves)."""
    try:
        with one_line_errors():
            return tyro.cli(cls, args=argv, description=description)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
