"""The HTML report in a real browser: headless Chromium at 1280 px loads every image,
nothing widens the page, and every link of the contents and findings lands on a section.

Skips where Chromium is not installed (Debian: `apt-get install chromium`; `.ci/run` installs it).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.cli import main

REPO = Path(__file__).resolve().parent.parent
REFERENCE_RUN = REPO / "results" / "reference" / "default-cpu.csv"
BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
    "--virtual-time-budget=10000",
]
# Runs in the page after load and leaves its verdict on <body data-check="...">.
CHECK = """<script>window.addEventListener('load', function () {
  var imgs = Array.from(document.images);
  var wide = Array.from(document.body.querySelectorAll('*')).filter(function (el) {
    return !el.closest('.scroll') && el.getBoundingClientRect().right > window.innerWidth + 1;
  }).map(function (el) { return el.tagName + ' ' + el.textContent.slice(0, 40); });
  var links = Array.from(document.querySelectorAll('a[href^="#"]'));
  document.body.setAttribute('data-check', JSON.stringify({
    images: imgs.length,
    broken: imgs.filter(function (i) { return !i.complete || i.naturalWidth === 0; }).length,
    pageWidth: document.documentElement.scrollWidth,
    viewWidth: window.innerWidth,
    wide: wide.slice(0, 5),
    links: links.length,
    deadLinks: links.filter(function (a) { return !document.getElementById(a.hash.slice(1)); }).length,
    scrollBoxes: document.querySelectorAll('.scroll').length
  }));
});</script>"""


@pytest.mark.slow
@pytest.mark.skipif(BROWSER is None, reason="needs Chromium (apt-get install chromium)")
def test_the_html_report_reads_well_at_1280_px(tmp_path):
    out = tmp_path / "report"
    assert main(["report", str(REFERENCE_RUN), "--out", str(out)]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", CHECK + "</body>"), encoding="utf-8")
    done = subprocess.run([BROWSER, *FLAGS, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=180)
    found = re.search(r'data-check="([^"]*)"', done.stdout)
    assert found, f"no verdict from the page: {done.stderr[-500:]}"
    check = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert check["images"] >= 5 and check["broken"] == 0
    assert check["pageWidth"] <= check["viewWidth"], check["wide"]
    assert not check["wide"]
    assert check["links"] >= 10 and check["deadLinks"] == 0
    assert check["scrollBoxes"] >= 3  # every table sits in a box that scrolls on its own
