"""Source trees to run code from: this checkout, a git ref checked out beside it, a snapshot.

``bench ci --against REF`` measures two trees side by side; each side's processes
import their own tree's ``bench`` and ``rnnmodels`` (``tree_env``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import filelock

from bench.core.errors import UsageError
from bench.core.paths import REPO_ROOT

COUNT_TREE = Path(tempfile.gettempdir()) / "rnnbench-count-tree"


def tree_env(tree: Path) -> dict[str, str]:
    """The environment of a process that runs ``tree``'s code: the tree first on the path,
    then what was there (``--model-path`` folders)."""
    return os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, (str(tree), os.environ.get("PYTHONPATH"))))}


def checkout(ref: str, path: Path) -> None:
    """``ref`` as a detached git worktree at ``path``; a ref git cannot check out is a UsageError."""
    done = subprocess.run(
        ["git", "worktree", "add", "--detach", str(path), ref], cwd=REPO_ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise UsageError(f"--against {ref}: cannot check it out ({done.stderr.strip().splitlines()[-1]})")


def remove_worktree(path: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=REPO_ROOT, capture_output=True)


@contextlib.contextmanager
def worktree(ref: str) -> Iterator[Path]:
    """``ref`` checked out in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="rnnbench-ci-") as tmp:
        path = Path(tmp) / "baseline-tree"
        checkout(ref, path)
        try:
            yield path
        finally:
            remove_worktree(path)


def snapshot() -> str:
    """A commit of this working tree as it is (changes and untracked files, not ignored ones),
    made through a scratch index: the user's index, branch and stash are left alone."""
    with tempfile.TemporaryDirectory(prefix="rnnbench-index-") as tmp:
        env = os.environ | {"GIT_INDEX_FILE": str(Path(tmp) / "index")}

        def git(*argv: str) -> str:
            done = subprocess.run(["git", *argv], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise UsageError(f"cannot snapshot the working tree for counting ({done.stderr.strip()})")
            return done.stdout.strip()

        git("add", "-A")
        tree = git("write-tree")
        return git("commit-tree", tree, "-p", "HEAD", "-m", "rnnbench: working tree, for counting")


@contextlib.contextmanager
def counting_tree(ref: str | None) -> Iterator[Path]:
    """The code to count, always at one path: ``ref`` checked out, or (None) a snapshot of
    this working tree, uncommitted and untracked files included.

    Python's hashes of path strings (the tree's place on sys.path) shape dict layouts, so
    the same code counted from two paths differs by up to 0.4% here; from one path, by
    nothing. A lock keeps two gates on one machine from sharing the path.
    """
    with filelock.FileLock(str(COUNT_TREE) + ".lock"):
        shutil.rmtree(COUNT_TREE, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=REPO_ROOT, capture_output=True)
        try:
            # Both sides as git checkouts: the same files in the same folders, so that
            # even the import system's directory listings match.
            checkout(ref or snapshot(), COUNT_TREE)
            yield COUNT_TREE
        finally:
            remove_worktree(COUNT_TREE)
            shutil.rmtree(COUNT_TREE, ignore_errors=True)
