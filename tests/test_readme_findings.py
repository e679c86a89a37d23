"""The key findings on docs/findings.md (linked from the README) are the report's own, computed from
the committed reference runs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def load_script():
    spec = importlib.util.spec_from_file_location("readme_findings", REPO / "scripts" / "readme_findings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_findings_block_is_what_the_code_computes_from_the_reference_runs():
    module = load_script()
    assert module.PAGE == REPO / "docs" / "findings.md"
    block = module.block()
    assert "| packed / padded time |" in block and "| lstm inference |" in block and "measurement 95% CI" in block
    # Links point into the reference report, relative to docs/, and every one lands on a file.
    assert "](../reports/reference/report.md#" in block and "](#" not in block
    assert (module.PAGE.parent / module.REPORT).is_file()
    text = module.PAGE.read_text(encoding="utf-8")
    assert text.count(module.START) == 1 and text.count(module.END) == 1, "docs/findings.md lost its markers"
    assert f"{module.START}\n{block}\n{module.END}" in text, (
        "docs/findings.md findings are stale: run python scripts/readme_findings.py"
    )
    assert module.main(["--check"]) == 0


@pytest.mark.slow
def test_the_check_fails_on_a_stale_block(tmp_path, monkeypatch):
    module = load_script()
    page = tmp_path / "findings.md"
    text = module.PAGE.read_text(encoding="utf-8")
    stale = text.replace("| packed / padded time |", "| packed / padded time (old) |", 1)
    assert stale != text
    page.write_text(stale, encoding="utf-8")
    monkeypatch.setattr(module, "PAGE", page)
    assert module.main(["--check"]) == 1
    assert module.main([]) == 0  # rewriting puts the computed block back, and only that changes
    new = page.read_text(encoding="utf-8")
    assert f"{module.START}\n{module.block()}\n{module.END}" in new
    assert new.split(module.START)[0] == stale.split(module.START)[0]
    assert new.split(module.END)[1] == stale.split(module.END)[1]
    assert module.main(["--check"]) == 0


def test_the_readme_links_the_findings_page():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "](docs/findings.md" in readme
    assert "findings:start" not in readme  # the generated block lives on docs/findings.md only
