"""The commands: each module is one ``bench`` subcommand, with ``add_parser(sub)`` and ``run(args) -> int``.

A command parses its flags and calls the layers below; it imports no other command
(a lint contract), and torch only inside ``run`` (``bench report --help`` needs none).
What several commands share is here.
"""

from __future__ import annotations

import argparse


def add_model_path_flag(parser: argparse.ArgumentParser) -> None:
    """``--model-path DIR`` (repeatable): where ``--model PACKAGE.MODULE:FACTORY`` is imported from."""
    parser.add_argument(
        "--model-path",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder to import --model PACKAGE.MODULE:FACTORY from (repeatable; also the working directory)",
    )
