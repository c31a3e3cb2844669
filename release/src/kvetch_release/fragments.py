"""Change fragments: one small Markdown file per change in ``changes/``.

File name: ``<ref>.<component>.<type>.md`` where ``ref`` is an issue/PR number
(``4``) or a ``+slug`` for changes without one, ``component`` is one of the
components and ``type`` one of the change types listed in ``changes/config.toml``
(defaults below). Unreleased fragments sit in ``changes/``; cutting a release
moves them into ``changes/v<version>/`` so every release keeps its own list.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

TYPES = {
    "security": "Security",
    "feature": "Features",
    "fix": "Fixes",
    "performance": "Performance",
    "deprecation": "Deprecations",
    "dependency": "Dependencies",
}
COMPONENTS = {
    "server": "kvetch (server)",
    "kvetchctl": "kvetchctl",
    "kvetchutl": "kvetchutl",
    "client": "Python client",
    "release": "Release tooling",
    "compat-matrix": "Compatibility matrix",
}
DEFAULT_REPOSITORY = "https://github.com/kvetch-io/kvetch"
_NAME = re.compile(r"^(?P<ref>\d+|\+[A-Za-z0-9_-]+)\.(?P<component>[a-z-]+)\.(?P<type>[a-z]+)\.md$")
_RELEASE_DIR = re.compile(r"^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")


class FragmentError(ValueError):
    """A fragment's name or content does not follow the rules."""


@dataclass(frozen=True)
class Config:
    repository: str = DEFAULT_REPOSITORY
    types: tuple[tuple[str, str], ...] = tuple(TYPES.items())
    components: tuple[tuple[str, str], ...] = tuple(COMPONENTS.items())


@dataclass(frozen=True)
class Fragment:
    name: str  # file name, identity across backports
    ref: str
    component: str
    type: str
    text: str
    path: Path
    link: str


def load_config(changes_dir: Path) -> Config:
    """Read ``changes/config.toml`` (repository URL, type and component titles) if present."""
    path = changes_dir / "config.toml"
    if not path.exists():
        return Config()
    data = tomllib.loads(path.read_text())
    types = tuple((t["name"], t["title"]) for t in data.get("types", [])) or tuple(TYPES.items())
    comps = tuple((c["name"], c["title"]) for c in data.get("components", [])) or tuple(COMPONENTS.items())
    return Config(data.get("repository", DEFAULT_REPOSITORY), types, comps)


def parse_fragment(path: Path, config: Config) -> Fragment:
    """Validate one fragment file and build its entry (with the link to its change)."""
    match = _NAME.match(path.name)
    if not match:
        raise FragmentError(f"{path}: name must be <issue>.<component>.<type>.md or +<slug>.<component>.<type>.md")
    comp, typ, ref = match["component"], match["type"], match["ref"]
    if comp not in dict(config.components):
        raise FragmentError(f"{path}: unknown component {comp!r} (one of {', '.join(dict(config.components))})")
    if typ not in dict(config.types):
        raise FragmentError(f"{path}: unknown type {typ!r} (one of {', '.join(dict(config.types))})")
    text = " ".join(path.read_text().split())
    if not text:
        raise FragmentError(f"{path}: empty fragment")
    if ref.isdigit():
        link = f"{config.repository}/issues/{ref}"
    elif _RELEASE_DIR.match(path.parent.name):
        # released: the tag is immutable, so the link never moves
        link = f"{config.repository}/blob/{path.parent.name}/changes/{path.parent.name}/{path.name}"
    else:
        link = f"{config.repository}/blob/main/changes/{path.name}"
    return Fragment(path.name, ref, comp, typ, text, path, link)


def read_dir(directory: Path, config: Config) -> list[Fragment]:
    """Every fragment directly inside ``directory`` (sorted), validated."""
    if not directory.is_dir():
        return []
    return [
        parse_fragment(p, config)
        for p in sorted(directory.iterdir())
        if p.is_file() and p.suffix == ".md" and p.name != "README.md"
    ]


def unreleased(changes_dir: Path, config: Config) -> list[Fragment]:
    return read_dir(changes_dir, config)


def released_dirs(changes_dir: Path) -> dict[str, Path]:
    """Map version (no ``v``) -> its ``changes/v<version>/`` directory."""
    if not changes_dir.is_dir():
        return {}
    return {p.name[1:]: p for p in changes_dir.iterdir() if p.is_dir() and _RELEASE_DIR.match(p.name)}


def move_to_release(changes_dir: Path, version: str) -> list[Path]:
    """Move the unreleased fragments into ``changes/v<version>/`` (done only when publishing)."""
    target = changes_dir / f"v{version}"
    target.mkdir(parents=True, exist_ok=True)
    moved = []
    for p in sorted(changes_dir.iterdir()):
        if p.is_file() and _NAME.match(p.name):
            dest = target / p.name
            p.rename(dest)
            moved.append(dest)
    return moved
