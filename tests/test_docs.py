"""docs/cli.md is generated from --help and must be up to date; every command must have help."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import click
import pytest

from mfcli.cli.main import cli

REPO = Path(__file__).resolve().parents[1]
CLI_DOC = REPO / "docs" / "cli.md"


def _load_script():
    spec = importlib.util.spec_from_file_location("make_cli_docs", REPO / "scripts" / "make_cli_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def documented() -> str:
    return CLI_DOC.read_text()


def _command_names() -> list[str]:
    context = click.Context(cli)
    return cli.list_commands(context)


def test_cli_doc_is_up_to_date(documented):
    assert documented == _load_script().render(), \
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
