"""Write docs/cli.md from the `--help` of every mfcli command (run from the repository root).

    python scripts/make_cli_docs.py           # rewrite docs/cli.md
    python scripts/make_cli_docs.py --check   # exit 1 if docs/cli.md is out of date

tests/cli/test_docs.py fails when docs/cli.md differs from what this script writes, so regenerate
it after adding or changing a command. The help is rendered at a fixed width so the file does
not depend on the terminal.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]
CLI_DOC = REPO / "docs" / "cli.md"
WIDTH = 100

HEADER = """\
# mfcli command reference

Generated from `--help` by `python scripts/make_cli_docs.py`; do not edit by hand.
Data formats, loading rules and the result file are described in [data.md](data.md).
"""


def walk(command: click.Command, context: click.Context, path: list[str]):
    """(command path, command, context) for ``command`` and every subcommand, depth first."""
    yield path, command, context
    if isinstance(command, click.Group):
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            if sub is None or sub.hidden:
                continue
            sub_context = click.Context(sub, info_name=name, parent=context, **sub.context_settings)
            yield from walk(sub, sub_context, [*path, name])


def render() -> str:
    """The text of docs/cli.md."""
    from mfcli.cli.main import cli

    settings = {**cli.context_settings, "terminal_width": WIDTH, "max_content_width": WIDTH}
    root = click.Context(cli, info_name="mfcli", **settings)
    sections = [HEADER]
    for path, command, context in walk(cli, root, ["mfcli"]):
        title = " ".join(path)
        sections.append(f"## {title}\n\n```text\n{command.get_help(context).rstrip()}\n```\n")
    return "\n".join(sections)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = CLI_DOC.read_text() if CLI_DOC.exists() else ""
        if current != text:
            print(f"{CLI_DOC.relative_to(REPO)} is out of date: run python scripts/make_cli_docs.py",
                  file=sys.stderr)
            return 1
        return 0
    CLI_DOC.parent.mkdir(exist_ok=True)
    CLI_DOC.write_text(text)
    print(f"wrote {CLI_DOC.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
