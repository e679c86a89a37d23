"""Write the reference run's key findings into docs/findings.md, between its findings markers.

    python scripts/readme_findings.py          # rewrite the block
    python scripts/readme_findings.py --check  # exit 1 if the page's block is stale

The block is the report's own "Key findings" (bench.report.findings) of the committed
reference runs, so the findings page (linked from the README) says what the code computes
from that data, nothing else.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from marked_block import rewrite  # noqa: E402

from bench.report.document import Document, to_markdown  # noqa: E402
from bench.report.findings import findings  # noqa: E402
from bench.report.load import load_many  # noqa: E402

REFERENCE_RUNS = [
    REPO / "results" / "reference" / f"{name}-cpu.csv" for name in ("default", "padding", "runtimes", "stream")
]
PAGE = REPO / "docs" / "findings.md"
REPORT = "../reports/reference/report.md"  # the reference report, relative to PAGE
START, END = "<!-- findings:start (scripts/readme_findings.py) -->", "<!-- findings:end -->"


def block() -> str:
    df = load_many(REFERENCE_RUNS)
    doc = Document("")
    timed = df[df["metric"] == "time"]
    # Stream rows have findings of their own, never pooled with whole-batch rows (bench.report).
    doc.add(
        *findings(timed[timed["mode"] != "stream"], timed[timed["mode"] == "stream"])[1:]
    )  # the page has its own heading
    text = to_markdown(doc).split("\n", 2)[2]  # drop the empty title
    # Links point into the reference report, not into the page.
    return text.replace("](#", f"]({REPORT}#").strip()


def main(argv: list[str]) -> int:
    how = "python scripts/readme_findings.py"
    return rewrite(PAGE, START, END, block(), "--check" in argv, how)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
