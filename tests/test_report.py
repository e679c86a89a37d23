"""Reports from real tiny runs and from doctored CSVs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from factories import TINY_SPEC

from bench.cli import main


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A real run: both models, packed/padded, two batch sizes, inference/training."""
    folder = tmp_path_factory.mktemp("run")
    spec = folder / "tiny.toml"
    spec.write_text(TINY_SPEC.replace("batch_size = [3]", "batch_size = [2, 4]"))
    out = folder / "run.csv"
    assert (
        main(
            [
                "run",
                "--spec",
                str(spec),
                "--out",
                str(out),
                "--num-layers",
                "1,2",
                "--bidirectional",
                "false,true",
                "--mode",
                "inference",
            ]
        )
        == 0
    )
    return out


def report(csvs: list[Path], out: Path) -> tuple[str, str]:
    assert main(["report", *map(str, csvs), "--out", str(out)]) == 0
    return (out / "report.md").read_text(), (out / "report.html").read_text()


@pytest.mark.slow
def test_report_files_exist_and_are_valid(tiny_run, tmp_path):
    md, page = report([tiny_run], tmp_path / "rep")
    pngs = sorted((tmp_path / "rep").glob("*.png"))
    assert {p.stem for p in pngs} >= {
        "scaling_batch_size",
        "packing",
        "depth_direction",
        "lstm_vs_gru",
        "roofline_0",  # a sweep measures its roofs: the efficiency section draws the roofline
    }
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert matplotlib.image.imread(png).ndim == 3
    # Markdown image links resolve; every PNG is used.
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert links and all((tmp_path / "rep" / link).is_file() for link in links)
    assert set(links) == {p.name for p in pngs}
    # HTML is self-contained: images inline, no external scripts, styles or links.
    assert page.count("data:image/png;base64,") == len(pngs)
    assert not re.search(r"(src|href)\s*=\s*['\"](?!data:|#)", page)  # in-page anchors only
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert "Packed vs padded" in md and "Every case" in md and "Environment" in md
    assert "Padded results against packed ones" in md and "Drifting for" in md  # from max_abs_err


def test_missing_axis_gives_a_note_not_a_figure(tiny_run, tmp_path):
    df = pd.read_csv(tiny_run, dtype=str, keep_default_na=False)
    one_size = tmp_path / "one.csv"
    df[df["batch_size"] == "2"].to_csv(one_size, index=False)
    md, _ = report([one_size], tmp_path / "rep")
    assert "Not shown: the data lacks two or more batch_size values" in md.replace("\\_", "_")
    assert not (tmp_path / "rep" / "scaling_batch_size.png").exists()
    assert "CPU vs GPU" in md and "--device cpu,cuda" in md


@pytest.mark.slow
def test_csv_strings_are_escaped(tiny_run, tmp_path):
    df = pd.read_csv(tiny_run, dtype=str, keep_default_na=False)
    df["cpu_model"] = "<script>alert(1)</script>"  # the machine's name: in findings, sections, tables
    df.loc[1, "status"] = "error"
    df.loc[1, "error"] = "<img src=x onerror=alert(2)> | [link](http://evil)"
    df.loc[2, "host"] = "<b>host</b>"
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    md, page = report([bad], tmp_path / "rep")
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "<b>host" not in page
    assert "<script>" not in md and "<img" not in md
    assert "[link](http://evil)" not in md and "\\[link\\]" in md  # escaped: no live link


@pytest.mark.slow
def test_two_machines_merge_into_one_report(tiny_run, tmp_path):
    df = pd.read_csv(tiny_run, dtype=str, keep_default_na=False)
    other = tmp_path / "other.csv"
    df.assign(cpu_model="Second CPU").to_csv(other, index=False)
    md, _ = report([tiny_run, other], tmp_path / "rep")
    assert "Second CPU" in md and "## Across machines" in md


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("", "empty file"),
        ("a,b\n1,2\n", "not a results CSV"),
        ("SCHEMA", "schema_version '99'"),
        ("DUP", "duplicate case_id"),
        ("TYPE", "non-integer"),
    ],
)
def test_bad_input_exits_2(tiny_run, tmp_path, capsys, content, message):
    path = tmp_path / "in.csv"
    if content == "SCHEMA":
        pd.read_csv(tiny_run, dtype=str).assign(schema_version="99").to_csv(path, index=False)
    elif content == "DUP":
        df = pd.read_csv(tiny_run, dtype=str)
        pd.concat([df, df.head(1)]).to_csv(path, index=False)
    elif content == "TYPE":
        pd.read_csv(tiny_run, dtype=str).assign(batch_size="big").to_csv(path, index=False)
    elif content is not None:
        path.write_text(content)
    assert main(["report", str(path), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_report_needs_no_torch(tiny_run, tmp_path):
    code = (
        "import sys; from bench.cli import main; "
        f"rc = main(['report', {str(tiny_run)!r}, '--out', {str(tmp_path / 'rep')!r}]); "
        "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent.parent
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_hostile_case_ids_write_nothing_outside_the_report_folder(tiny_run, tmp_path):
    df = pd.read_csv(tiny_run, dtype=str, keep_default_na=False)
    df.loc[0, "case_id"] = "../../escaped"
    df.loc[1, "case_id"] = "/tmp/absolute-escape"
    hostile = tmp_path / "hostile.csv"
    df.to_csv(hostile, index=False)
    out = tmp_path / "deep" / "rep"
    before = set(tmp_path.rglob("*"))
    report([hostile], out)
    created = set(tmp_path.rglob("*")) - before
    assert created and all(p == out or out in p.parents or p == out.parent for p in created)
    assert not Path("/tmp/absolute-escape").exists()


@pytest.mark.slow
def test_implementations_section_shows_each_variant_against_packed_module(tmp_path, tiny_spec):
    out = tmp_path / "variants.csv"
    flags = ["--varlen", "padded,packed,exact", "--impl", "module,cells", "--bidirectional", "true"]
    sizes = ["--batch-size", "2,4", "--seq-len", "5,8", "--mode", "inference"]
    assert main(["run", "--spec", str(tiny_spec), "--out", str(out), *flags, *sizes]) == 0
    md, _ = report([out], tmp_path / "rep")
    section = md.split("## Implementations and exact padding")[1].split("\n## ")[0]
    assert "exact padding / packed time: " in section and "(measurement 95% CI " in section
    assert "8 give wrong outputs at valid positions" in section  # every padded bidirectional row (2 models x 4)
    assert "(implementations.png)" in section and "(exact_grid.png)" in section
    rows = [line for line in section.splitlines() if line.startswith("| ") and "×" in line]
    table = {line.split(" | ")[0].strip("| "): line for line in rows}
    assert set(table) == {"module·padded", "module·exact", "cells·padded", "cells·packed", "cells·exact"}
    assert matplotlib.image.imread(tmp_path / "rep" / "exact_grid.png").shape[0] > 100


def test_implementations_section_names_the_flags_when_variants_are_missing(tiny_run, tmp_path):
    df = pd.read_csv(tiny_run, dtype=str, keep_default_na=False)
    padded_only = tmp_path / "padded.csv"
    df[df["varlen"] == "padded"].to_csv(padded_only, index=False)  # nothing to hold the variants against
    md, _ = report([padded_only], tmp_path / "rep")
    section = md.split("## Implementations and exact padding")[1].split("\n## ")[0]
    assert "--varlen padded,packed,exact --impl module,compiled,cells" in section


@pytest.mark.slow
def test_results_from_before_the_varlen_and_impl_axes_still_load(tiny_run, tmp_path):
    df = pd.read_csv(tiny_run, dtype=str, keep_default_na=False)
    old = tmp_path / "old.csv"
    # A version-1 file as written before the varlen and impl axes (version 1 gained them without a bump).
    df = df.assign(schema_version="1")
    df.drop(columns=["varlen", "impl", "state_max_abs_err", "compile_s"]).to_csv(old, index=False)
    from bench.report.load import read_results

    loaded = read_results(old)
    assert list(loaded["varlen"]) == list(df["varlen"]) and set(loaded["impl"]) == {"module"}
    md, _ = report([old], tmp_path / "rep")
    assert "packed / padded time: " in md.split("## Packed vs padded")[1]


def test_a_figure_names_one_machine_once_in_its_title_and_labels_log_axes_plainly(tmp_path):
    from bench.report.plotting import MACHINE_SEP, new_figure, save

    fig, axes = new_figure()
    ax = axes[0][0]
    ax.plot([1, 10, 1000], [5, 60, 70000], label=f"lstm{MACHINE_SEP}cpu box")
    ax.plot([1, 10, 1000], [6, 70, 80000], label=f"gru{MACHINE_SEP}cpu box")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend()
    save(fig, tmp_path, "one", "Does it scale?")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["lstm", "gru"]
    assert fig.get_suptitle() == "Does it scale? (cpu box)"
    labels = [t.get_text() for t in ax.yaxis.get_ticklabels()]
    assert "10,000" in labels and not any("10^" in t or "$" in t for t in labels)

    fig, axes = new_figure()
    ax = axes[0][0]
    ax.plot([1, 2], [1, 2], label=f"lstm{MACHINE_SEP}box a")
    ax.plot([1, 2], [2, 3], label=f"lstm{MACHINE_SEP}box b")
    ax.legend()
    save(fig, tmp_path, "two", "Does it scale?")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [f"lstm{MACHINE_SEP}box a", f"lstm{MACHINE_SEP}box b"]
    assert fig.get_suptitle() == "Does it scale?"


def test_heatmap_cells_not_measured_are_hatched_not_coloured(tmp_path):
    from bench.report.plotting import new_figure, ratio_heatmap, ratio_norm

    grid = pd.DataFrame([[0.5, np.nan], [1.2, 2.0]], index=[16, 32], columns=[1, 8])
    _, axes = new_figure()
    ax = axes[0][0]
    ratio_heatmap(ax, grid, ratio_norm([0.5, 2.0]), "t", lambda i, j, v: f"{v:.2f}")
    assert ax.patch.get_hatch() == "///"  # shows through the NaN cell
    assert [t.get_text() for t in ax.texts] == ["0.50", "1.20", "2.00"]  # no label on the missing cell
