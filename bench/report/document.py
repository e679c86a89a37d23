"""A report as a list of blocks, rendered twice: Markdown and self-contained HTML.

Every string that may come from a CSV goes through ``md_text``/``html.escape``
here, in one place, so a cell holding ``<script>`` shows as text in both.
"""

from __future__ import annotations

import base64
import html
import math
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str


@dataclass
class Image:
    file: str  # a PNG in the report folder
    alt: str


@dataclass
class Link:
    """A relative link built by the caller from trusted parts (never raw CSV text)."""

    text: str
    href: str
    note: str = ""


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    sortable: bool = False
    fold: str = ""  # if set, the table is folded away (<details>) under this summary line
    wrap: bool = False  # let long cells wrap (HTML) instead of widening the table
    # Per cell, a time over the row's best (1.0 = the best): the HTML shades it, blue for the
    # best, white to red as it grows to 2x and beyond (the report's one colour scale for ratios).
    shade: list[list[float | None]] | None = None


def shade_colour(ratio: float) -> str:
    if ratio <= 1.0:
        return "#d1e5f0"  # the row's best
    mix = min(math.log2(ratio), 1.0)  # 2x and beyond: full red
    red = (0xF4, 0xA5, 0x82)
    return "#" + "".join(f"{round(255 + (c - 255) * mix):02x}" for c in red)


@dataclass
class Findings:
    """A table of answers, each row linked (in a last column) to the section that shows it."""

    header: list[str]
    rows: list[list[str]]
    sections: list[str]  # per row, the heading of its section


Block = Heading | Paragraph | Image | Link | Table | Findings
Blocks = list[Block]  # what a report section returns


@dataclass
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)


def md_text(text: str) -> str:
    """Escape Markdown and inline HTML so CSV text renders as literal text."""
    text = html.escape(str(text), quote=False)
    for ch in "\\`*_[]|#":
        text = text.replace(ch, "\\" + ch)
    return text.replace("\n", " ")


def _code_spans(text: str) -> list[tuple[str, bool]]:
    """``text`` cut at its backticks: (piece, is_code); unbalanced backticks stay plain text."""
    pieces = str(text).split("`")
    if len(pieces) % 2 == 0:
        return [(str(text), False)]
    return [(piece, i % 2 == 1) for i, piece in enumerate(pieces) if piece]


def md_inline(text: str) -> str:
    """Report prose for Markdown: `flag` spans as code, everything else escaped. A span that could
    end a code span's safety (a line break: raw HTML after it; a pipe: a table cell) is escaped text."""
    return "".join(
        f"`{piece}`" if code and not any(ch in piece for ch in "\n\r|<>") else md_text(piece)
        for piece, code in _code_spans(text)
    )


def html_inline(text: str) -> str:
    return "".join(
        f"<code>{html.escape(piece)}</code>" if code else html.escape(piece) for piece, code in _code_spans(text)
    )


def _md_table(header: list[str], rows: list[list[str]], cell=md_text) -> list[str]:
    out = ["| " + " | ".join(md_text(h) for h in header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]


def to_markdown(doc: Document) -> str:
    out = [f"# {md_text(doc.title)}", ""]
    sections = [b for b in doc.blocks if isinstance(b, Heading) and b.level == 2]
    if len(sections) > 1:  # GitHub makes the same anchors from the headings
        out += [f"{i}. [{md_text(h.text)}](#{anchor(h.text)})" for i, h in enumerate(sections, 1)] + [""]
    top = f"[↑ contents](#{anchor(doc.title)})"
    for k, b in enumerate(doc.blocks):
        if isinstance(b, Heading):
            if b.level == 2 and len(sections) > 1 and k:
                out += [top, ""]
            out += ["#" * b.level + " " + md_text(b.text), ""]
        elif isinstance(b, Paragraph):
            out += [md_inline(b.text), ""]
        elif isinstance(b, Image):
            out += [f"![{md_text(b.alt)}]({b.file})", ""]
        elif isinstance(b, Link):
            out += [f"- [{md_text(b.text)}]({urllib.parse.quote(b.href)})" + (f": {md_text(b.note)}" if b.note else "")]
        elif isinstance(b, Findings):
            table = _md_table([*b.header, "section"], [[*row, ""] for row in b.rows], md_inline)
            for i, section in enumerate(b.sections):  # the link is ours, not CSV text: not escaped
                table[2 + i] = table[2 + i][: -len("  |")] + f" [{md_text(section)}](#{anchor(section)}) |"
            out += [*table, ""]
        else:
            if b.fold:
                out += [f"<details><summary>{md_text(b.fold)}</summary>", ""]
            out += [*_md_table(b.header, b.rows), ""]
            if b.fold:
                out += ["</details>", ""]
    return "\n".join(out)


# Tables scroll inside their own box (.scroll), so a wide one never widens the page;
# case ids stay on one line there instead of wrapping onto five.
STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
img{max-width:100%;height:auto}.scroll{overflow-x:auto;max-width:100%;margin:0.5em 0}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;
white-space:nowrap}th{background:#eee}th.sortable{cursor:pointer}p,li{overflow-wrap:anywhere}
nav.toc{background:#f6f6f6;padding:0.5em 1em;border:1px solid #ddd}nav.toc ol{margin:0.3em 0}
p.top{font-size:12px;margin:1.5em 0 0}summary{cursor:pointer;margin:0.5em 0}
table.findings td{white-space:normal;vertical-align:top}table.findings tr.first td{border-top:2px solid #888}
table.wrap td{white-space:normal}"""
# Inline, so the file opens offline: click a header to sort by it (numbers as numbers).
SORT_SCRIPT = """document.querySelectorAll('table.sortable th').forEach(function(th,i){
th.classList.add('sortable');th.addEventListener('click',function(){
var tb=th.closest('table').tBodies[0],rows=Array.from(tb.rows),asc=th.dataset.asc!=='1';
th.dataset.asc=asc?'1':'0';rows.sort(function(a,b){var x=a.cells[i].textContent,y=b.cells[i].textContent,
p=parseFloat(x),q=parseFloat(y);var c=(!isNaN(p)&&!isNaN(q))?p-q:x.localeCompare(y);return asc?c:-c;});
rows.forEach(function(r){tb.appendChild(r);});});});"""


def anchor(text: str) -> str:
    """A heading's id, as GitHub spells it: lower case, spaces to hyphens, punctuation dropped."""
    kept = "".join(ch for ch in text.lower() if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


def to_html(doc: Document, folder: Path) -> str:
    esc = html.escape
    sections = [b for b in doc.blocks if isinstance(b, Heading) and b.level == 2]
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{esc(doc.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1 id='{esc(anchor(doc.title))}'>{esc(doc.title)}</h1>",
    ]
    if len(sections) > 1:
        items = "".join(f"<li><a href='#{esc(anchor(h.text))}'>{esc(h.text)}</a></li>" for h in sections)
        out.append(f"<nav class='toc'><strong>Contents</strong><ol>{items}</ol></nav>")
    top = f"<p class='top'><a href='#{esc(anchor(doc.title))}'>↑ contents</a></p>"
    for k, b in enumerate(doc.blocks):
        if isinstance(b, Heading):
            if b.level == 2 and len(sections) > 1 and k:
                out.append(top)
            out.append(f"<h{b.level} id='{esc(anchor(b.text))}'>{esc(b.text)}</h{b.level}>")
        elif isinstance(b, Paragraph):
            out.append(f"<p>{html_inline(b.text)}</p>")
        elif isinstance(b, Image):
            data = base64.b64encode((folder / b.file).read_bytes()).decode("ascii")
            out.append(f"<p><img alt='{esc(b.alt)}' src='data:image/png;base64,{data}'></p>")
        elif isinstance(b, Findings):
            head = "".join(f"<th>{esc(h)}</th>" for h in [*b.header, "section"])
            # A question's rows form one group: its question, verdict and section span them.
            groups: list[list[int]] = []
            for i, row in enumerate(b.rows):
                if row[0] or not groups:
                    groups.append([i])
                else:
                    groups[-1].append(i)
            body = []
            for group in groups:
                span = f" rowspan='{len(group)}'" if len(group) > 1 else ""
                for k, i in enumerate(group):
                    row, cells = b.rows[i], []
                    for c, text in enumerate(row):
                        if c < 2 and k == 0:
                            cells.append(f"<td{span}>{html_inline(text)}</td>")
                        elif c >= 2:
                            cells.append(f"<td>{html_inline(text)}</td>")
                    if k == 0:
                        link = f"<a href='#{esc(anchor(b.sections[i]))}'>{esc(b.sections[i])}</a>"
                        cells.append(f"<td{span}>{link}</td>")
                    body.append("<tr class='first'>" if k == 0 else "<tr>")
                    body.append("".join(cells) + "</tr>")
            out.append(f"<div class='scroll'><table class='findings'><thead><tr>{head}</tr></thead>")
            out.append(f"<tbody>{''.join(body)}</tbody></table></div>")
        elif isinstance(b, Link):
            # Text, not a live link: the page stays one self-contained file.
            out.append(f"<p>{esc(b.text)}: <code>{esc(b.href)}</code>{': ' + esc(b.note) if b.note else ''}</p>")
        else:
            cls = " class='" + " ".join(c for c, on in (("sortable", b.sortable), ("wrap", b.wrap)) if on) + "'"
            cls = "" if cls == " class=''" else cls
            if b.fold:
                out.append(f"<details><summary>{esc(b.fold)}</summary>")
            out.append(f"<div class='scroll'><table{cls}><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in b.header))
            out.append("</tr></thead><tbody>")
            shades = b.shade or [[None] * len(row) for row in b.rows]
            for row, tones in zip(b.rows, shades, strict=True):
                cells = (
                    f"<td style='background:{shade_colour(t)}'>{esc(c)}</td>" if t is not None else f"<td>{esc(c)}</td>"
                    for c, t in zip(row, tones, strict=True)
                )
                out.append("<tr>" + "".join(cells) + "</tr>")
            out.append("</tbody></table></div>" + ("</details>" if b.fold else ""))
    out.append(f"<script>{SORT_SCRIPT}</script></body></html>")
    return "\n".join(out)
