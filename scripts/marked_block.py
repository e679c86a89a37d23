"""A generated block inside a hand-written file, between two marker lines: write it, or check it."""

from __future__ import annotations

import sys
from pathlib import Path


def rewrite(path: Path, start: str, end: str, block: str, check: bool, how: str) -> int:
    """Put ``block`` between ``start`` and ``end`` in ``path``; with ``check``, only say whether it is
    already there (exit status 1 and one line naming ``how`` to refresh it, if not)."""
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{start}\n{block}\n{end}{tail}"
    if check:
        if new != text:
            print(f"{path.name}: the generated block is stale; run {how}", file=sys.stderr)
            return 1
        return 0
    path.write_text(new, encoding="utf-8")
    return 0
