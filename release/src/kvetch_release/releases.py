"""The releases file (``releases.toml`` at the repository root): one entry per
published release with its version, commit, date, artifacts and image digests.

Reader API (standard library only, so other tools can depend on it cheaply)::

    from kvetch_release import releases
    for rel in releases.load("releases.toml"):      # oldest first
        rel.version, rel.commit, rel.date            # "0.1.0", 40-hex sha, "2026-12-01"
        rel.artifacts                                # [Artifact(name, sha256, url)]
        rel.images                                   # [Image(ref, digest, platforms)]
        rel.tiers                                    # {"linux/arm64/py3.11": 2, ...}
    releases.find(releases.load(path), "0.1.0")     # one Release or None

A missing file means "no release yet" (an empty list).
"""

from __future__ import annotations

import datetime as _dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = 1
HEADER = (
    "# Release history of kvetch, one [[release]] table per published release.\n"
    "# Written by `kvetch-release release --publish`; read with kvetch_release.releases.load().\n"
    "# Fields: version (semver, no leading v), commit (git sha of the tag), date (UTC, YYYY-MM-DD),\n"
    "# artifacts (file name + sha256), images (reference, index digest, platforms),\n"
    "# tiers (support tier per platform computed from test evidence; 0 = unsupported).\n"
)


@dataclass(frozen=True)
class Artifact:
    name: str
    sha256: str
    url: str = ""


@dataclass(frozen=True)
class Image:
    ref: str
    digest: str
    platforms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Release:
    version: str
    commit: str
    date: str
    artifacts: tuple[Artifact, ...] = field(default_factory=tuple)
    images: tuple[Image, ...] = field(default_factory=tuple)
    #: support tier computed for each platform at release time (0: unsupported)
    tiers: dict[str, int] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return f"v{self.version}"


def _key(version: str) -> tuple:
    # semver ordering without importing semver: numbers, then "final after pre-release".
    core, _, pre = version.partition("+")[0].partition("-")
    nums = tuple(int(p) for p in core.split("."))
    pre_key: tuple = (1,) if not pre else (0, *((0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")))
    return (nums, pre_key)


def load(path: str | Path = "releases.toml") -> list[Release]:
    """Every release recorded in ``path``, oldest first; ``[]`` when the file does not exist."""
    p = Path(path)
    if not p.exists():
        return []
    data = tomllib.loads(p.read_text())
    schema = data.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise ValueError(f"{p}: unsupported releases schema {schema} (this reader knows {SCHEMA})")
    out = []
    for entry in data.get("release", []):
        date = entry["date"]
        if isinstance(date, _dt.date):
            date = date.isoformat()
        out.append(
            Release(
                version=str(entry["version"]),
                commit=str(entry["commit"]),
                date=str(date),
                artifacts=tuple(Artifact(a["name"], a["sha256"], a.get("url", "")) for a in entry.get("artifacts", [])),
                images=tuple(
                    Image(i["ref"], i["digest"], tuple(i.get("platforms", []))) for i in entry.get("images", [])
                ),
                tiers={str(k): int(v) for k, v in entry.get("tiers", {}).items()},
            )
        )
    return sorted(out, key=lambda r: _key(r.version))


def find(items: list[Release], version: str) -> Release | None:
    """The release of ``version`` (with or without a leading ``v``), if any."""
    want = version.removeprefix("v")
    return next((r for r in items if r.version == want), None)


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dumps(items: list[Release]) -> str:
    """Serialise releases (oldest first) in the documented TOML shape."""
    lines = [HEADER, f"schema = {SCHEMA}", ""]
    for rel in sorted(items, key=lambda r: _key(r.version)):
        lines += ["[[release]]", f"version = {_q(rel.version)}", f"commit = {_q(rel.commit)}", f"date = {_q(rel.date)}"]
        if rel.tiers:
            lines.append("tiers = { " + ", ".join(f"{_q(k)} = {v}" for k, v in sorted(rel.tiers.items())) + " }")
        lines.append("")
        for a in rel.artifacts:
            lines += ["[[release.artifacts]]", f"name = {_q(a.name)}", f"sha256 = {_q(a.sha256)}"]
            if a.url:
                lines.append(f"url = {_q(a.url)}")
            lines.append("")
        for i in rel.images:
            plats = ", ".join(_q(p) for p in i.platforms)
            lines += ["[[release.images]]", f"ref = {_q(i.ref)}", f"digest = {_q(i.digest)}", f"platforms = [{plats}]", ""]
    return "\n".join(lines).rstrip() + "\n"


def append(path: str | Path, rel: Release) -> None:
    """Add ``rel`` to the file; refuses a version that is already recorded."""
    items = load(path)
    if find(items, rel.version):
        raise ValueError(f"v{rel.version} is already in {path}")
    Path(path).write_text(dumps([*items, rel]))
