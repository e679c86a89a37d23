"""`.ci/run` never turns a missing tool into silent skips: a failed install fails CI in one line."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def tool_dir(tmp_path: Path, apt_get: str) -> Path:
    """A PATH with what .ci/run's first lines use, no valgrind, no chromium, and a fake apt-get."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "mktemp", "cat"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    fake = bin_dir / "apt-get"
    fake.write_text(f"#!{shutil.which('bash')}\n{apt_get}\n")
    fake.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize(
    ("apt_get", "says"),
    [
        ("echo 'E: Unable to locate package' >&2; exit 100", "could not install valgrind chromium"),
        ("exit 0", "installed valgrind but it is not on PATH"),  # "installed", yet nothing there
    ],
)
def test_ci_fails_in_one_line_when_a_tool_cannot_be_installed(tmp_path, apt_get, says):
    env = {"PATH": str(tool_dir(tmp_path, apt_get)), "HOME": str(tmp_path)}
    done = subprocess.run(
        [shutil.which("bash"), str(REPO / ".ci" / "run")], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 1
    err = done.stderr.strip()
    assert len(err.splitlines()) == 1 and says in err, err
    assert "nox" not in done.stdout  # stopped before the tests


def test_pytest_lists_every_skip_with_its_reason():
    text = (REPO / "pyproject.toml").read_text()
    addopts = next(line for line in text.splitlines() if line.startswith("addopts"))
    assert "-ra" in addopts.split('"')[1].split() or "-rs" in addopts.split('"')[1].split()
