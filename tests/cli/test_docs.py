"""docs/cli.md is generated from --help and must be up to date; every command must have help."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from checks import load_script
from mfcli.cli.main import cli

REPO = Path(__file__).resolve().parents[2]
CLI_DOC = REPO / "docs" / "cli.md"


@pytest.fixture(scope="module")
def documented() -> str:
    return CLI_DOC.read_text()


def _command_names() -> list[str]:
    context = click.Context(cli)
    return cli.list_commands(context)


def test_cli_doc_is_up_to_date(documented):
    assert documented == load_script("make_cli_docs").render(), \
        "docs/cli.md is out of date: run `python scripts/make_cli_docs.py` and commit docs/cli.md"


@pytest.mark.parametrize("name", _command_names())
def test_every_command_is_documented(documented, name):
    assert re.search(rf"^## mfcli {re.escape(name)}$", documented, flags=re.MULTILINE), \
        f"mfcli {name} is missing from docs/cli.md: run `python scripts/make_cli_docs.py`"


@pytest.mark.parametrize("name", _command_names())
def test_every_command_has_help_text(name):
    command = cli.get_command(click.Context(cli), name)
    assert (command.help or "").strip(), f"mfcli {name} has no help text (write the command's docstring)"
    assert command.get_short_help_str(limit=200).strip(), f"mfcli {name} has no one-line description"
    for parameter in command.params:
        if isinstance(parameter, click.Option) and not parameter.hidden:
            assert parameter.help, f"option {parameter.opts[0]} of mfcli {name} has no help text"


def test_data_doc_covers_the_loading_rules_and_the_result_layout():
    text = (REPO / "docs" / "data.md").read_text()
    for words in ("bands x pixels", "Fortran", "maxValue", "SlectBands", "sample:", "/layers/", "MATLAB_class",
                  "--order", "--transpose", "--layout", "interleave", "sha256"):
        assert words in text, f"docs/data.md does not mention {words}"


def _readme_command_lines() -> list[list[str]]:
    """Every `mfcli ...` command line of the README's sh blocks, as argument lists (pipes split,
    redirections and comments dropped, continuation lines joined)."""
    import shlex

    text = (REPO / "README.md").read_text()
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            for command in re.split(r"&&|\|", line.split("#")[0]):
                args = shlex.split(command.split(">")[0])
                if args[:1] == ["mfcli"]:
                    lines.append(args[1:])
    return lines


def test_readme_has_a_section_for_every_command():
    text = (REPO / "README.md").read_text()
    for name in _command_names():
        assert re.search(rf"^### mfcli {re.escape(name)}$", text, flags=re.MULTILINE), \
            f"README.md has no '### mfcli {name}' section"


@pytest.mark.parametrize("args", _readme_command_lines(), ids=lambda args: " ".join(args[:2]))
def test_readme_examples_are_valid_command_lines(args):
    """Every example in the README parses: its command and options exist and take those values."""
    context = click.Context(cli, info_name="mfcli")
    name = args[0]
    command = cli.get_command(context, name)
    assert command is not None, f"README example uses an unknown command: mfcli {' '.join(args)}"
    try:
        command.make_context(name, list(args[1:]), parent=context)
    except click.UsageError as exc:
        pytest.fail(f"README example `mfcli {' '.join(args)}` does not parse: {exc.format_message()}")
