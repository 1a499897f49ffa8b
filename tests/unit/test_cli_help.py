"""Every verb and flag of ``ai1net`` has help text, and ``--version`` answers (CONTRACT §5)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from ai1net.server.cli import main, parser, version


def commands(command: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield command
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help, f"{command.prog} {choice.dest} has no help text"
            for sub in action.choices.values():
                yield from commands(sub)


def test_every_verb_and_flag_has_help_text():
    walked = list(commands(parser()))
    assert len(walked) > 10  # the walk reaches the sub-commands
    for command in walked:
        for action in command._actions:
            if not isinstance(action, argparse._SubParsersAction):
                assert action.help, f"{command.prog} {action.option_strings or action.dest}"


def test_version(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"ai1net {version()}"
    assert version()[0].isdigit()
