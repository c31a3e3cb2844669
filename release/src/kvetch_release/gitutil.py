"""Small git queries and actions the release steps need (subprocess, no library)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(root: Path, *args: str, check: bool = True, strip: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip() if strip else proc.stdout


def head(root: Path) -> str:
    return git(root, "rev-parse", "HEAD")


def dirty_paths(root: Path) -> list[str]:
    """Modified or untracked paths (ignored files excluded)."""
    return [line[3:] for line in git(root, "status", "--porcelain", strip=False).splitlines() if line]


def tag_exists(root: Path, tag: str) -> bool:
    return bool(git(root, "tag", "--list", tag))
