"""The few git facts a run records and a reproduction needs, from the ``git`` command."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .exceptions import UsageError


def _git(cwd: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.SubprocessError):
        return None


def git_commit(cwd: Path) -> str | None:
    """The commit checked out at ``cwd``, None outside a repository (or without git)."""
    done = _git(cwd, "rev-parse", "HEAD", timeout=5)
    return done.stdout.strip() if done and done.returncode == 0 and done.stdout.strip() else None


def repo_root(cwd: Path) -> Path | None:
    done = _git(cwd, "rev-parse", "--show-toplevel", timeout=5)
    return Path(done.stdout.strip()) if done and done.returncode == 0 else None


def changed_files(cwd: Path) -> list[str]:
    """Tracked files with uncommitted changes (untracked files do not count)."""
    done = _git(cwd, "status", "--porcelain", "--untracked-files=no")
    if done is None or done.returncode != 0:
        return []
    return [line[3:] for line in done.stdout.splitlines() if line.strip()]


def commit_exists(cwd: Path, commit: str) -> bool:
    done = _git(cwd, "cat-file", "-e", f"{commit}^{{commit}}", timeout=5)
    return done is not None and done.returncode == 0


@contextlib.contextmanager
def worktree(cwd: Path, commit: str) -> Iterator[Path]:
    """A temporary detached worktree of ``commit``, removed afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="mlops-worktree-"))
    path = parent / "tree"
    done = _git(cwd, "worktree", "add", "--detach", str(path), commit, timeout=120)
    if done is None or done.returncode != 0:
        shutil.rmtree(parent, ignore_errors=True)
        why = (done.stderr.strip().splitlines() or ["git failed"])[-1] if done else "no git"
        raise UsageError(f"could not check out commit {commit[:12]} in a worktree: {why}")
    try:
        yield path
    finally:
        _git(cwd, "worktree", "remove", "--force", str(path), timeout=120)
        shutil.rmtree(parent, ignore_errors=True)
        _git(cwd, "worktree", "prune", timeout=30)
