"""Versions: parse, bump and order kvetch versions (PyPI ``semver``), and read or
rewrite the one source of the server version, ``server/src/kvetch/version.py``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import semver

BUMPS = ("major", "minor", "patch", "prerelease")
VERSION_FILE = Path("server/src/kvetch/version.py")
_ASSIGN = re.compile(r'^__version__\s*=\s*"([^"]*)"\s*$', re.MULTILINE)


class VersionError(ValueError):
    """A version is malformed, already released, or does not move forward."""


def parse(text: str) -> semver.Version:
    """Parse ``X.Y.Z[-pre][+build]`` (a leading ``v`` is accepted) or raise VersionError."""
    raw = text[1:] if text.startswith("v") else text
    try:
        return semver.Version.parse(raw)
    except (ValueError, TypeError) as exc:
        raise VersionError(f"{text!r} is not a semantic version (expected MAJOR.MINOR.PATCH[-PRE])") from exc


def bump(current: str | semver.Version, part: str, pre_token: str = "rc") -> semver.Version:
    """Return ``current`` bumped by ``part`` (major, minor, patch or prerelease).

    A pre-release bump of a final version starts the next patch's first
    pre-release (0.1.0 -> 0.1.1-rc.1); of a pre-release, it counts up (rc.1 -> rc.2).
    """
    ver = current if isinstance(current, semver.Version) else parse(current)
    if part == "major":
        return ver.bump_major()
    if part == "minor":
        return ver.bump_minor()
    if part == "patch":
        # 1.2.0-rc.2 -> 1.2.0: finishing a pre-release releases it.
        return ver.finalize_version() if ver.prerelease else ver.bump_patch()
    if part == "prerelease":
        if ver.prerelease:
            return ver.bump_prerelease(pre_token)
        return ver.bump_patch().bump_prerelease(pre_token)
    raise VersionError(f"unknown bump {part!r}: choose one of {', '.join(BUMPS)}")


def check_new(candidate: str | semver.Version, released: Iterable[str]) -> semver.Version:
    """Refuse ``candidate`` when it is already released or not newer than every release."""
    ver = candidate if isinstance(candidate, semver.Version) else parse(candidate)
    done = sorted(parse(v) for v in released)
    if ver in done:
        raise VersionError(f"v{ver} is already released (see the releases file); bump the version")
    if done and ver <= done[-1]:
        raise VersionError(
            f"v{ver} is not newer than the latest release v{done[-1]}; versions must increase"
        )
    return ver


def read_version(root: Path) -> str:
    """The version written in ``server/src/kvetch/version.py``."""
    text = (root / VERSION_FILE).read_text()
    match = _ASSIGN.search(text)
    if not match:
        raise VersionError(f"{VERSION_FILE} has no __version__ = \"X.Y.Z\" line")
    parse(match.group(1))
    return match.group(1)


def write_version(root: Path, version: str | semver.Version) -> None:
    """Rewrite the ``__version__`` line of the server's version module, nothing else."""
    path = root / VERSION_FILE
    text = path.read_text()
    new, count = _ASSIGN.subn(f'__version__ = "{version}"', text, count=1)
    if count != 1:
        raise VersionError(f"{VERSION_FILE} has no __version__ line to rewrite")
    path.write_text(new)
