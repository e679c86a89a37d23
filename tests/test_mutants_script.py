"""scripts/mutants.py stays in step with the code: every named mutant still applies, once."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def load():
    spec = importlib.util.spec_from_file_location("mutants", REPO / "scripts" / "mutants.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_named_mutant_applies_exactly_once_and_names_existing_tests():
    module = load()
    assert len(module.MUTANTS) >= 10
    for m in module.MUTANTS:
        text = (REPO / m.path).read_text(encoding="utf-8")
        for old, new in m.edits():
            assert text.count(old) == 1, (m.name, old)
            assert old != new
        assert m.tests and all((REPO / t).is_file() for t in m.tests), m.name
