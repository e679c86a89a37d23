"""The README's key findings are the report's own, computed from the committed reference runs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_readme_findings_block_is_what_the_code_computes_from_the_reference_runs():
    spec = importlib.util.spec_from_file_location("readme_findings", REPO / "scripts" / "readme_findings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    block = module.block()
    assert "| packed / padded time |" in block and "| lstm inference |" in block and "measurement 95% CI" in block
    assert "](reports/reference/report.md#" in block  # links into the reference report
    assert module.main(["--check"]) == 0, "README.md findings are stale: run python scripts/readme_findings.py"
