"""The command line starts light: building the parser imports no torch, pandas or scipy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import COMMANDS, build_parser

REPO = Path(__file__).resolve().parent.parent


def test_building_the_parser_imports_no_heavy_library():
    code = (
        "import sys; from bench.cli import build_parser; build_parser(); "
        "heavy = sorted({'torch', 'pandas', 'scipy', 'matplotlib'} & set(sys.modules)); print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


# The least each command takes on the command line.
LEAST = {"report": ["a.csv"], "merge": ["p.csv", "--out", "m.csv"], "compare": ["a.csv", "b.csv"], "history": ["r"]}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_module_has_add_parser_and_run(name):
    import importlib

    module = importlib.import_module(COMMANDS[name])
    assert callable(module.add_parser) and callable(module.run)
    assert build_parser().parse_args([name, *LEAST.get(name, [])]).command == name
