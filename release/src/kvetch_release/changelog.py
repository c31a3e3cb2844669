"""CHANGELOG.md: one section per version, newest first, rendered with jinja2.

Which fragments a version lists follows etcd's rule: a patch (X.Y.Z, Z > 0) or
a pre-release lists only its own changes; X.Y.0 lists every change since the
previous minor X.(Y-1).0 (including those shipped in that minor's patches),
de-duplicated by fragment name so a backported fix appears once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import semver

from . import fragments as fr
from . import releases as rl
from .render import render

_PATCHES_ONLY = "patch"


@dataclass
class Group:
    name: str
    title: str
    entries: list[dict]


@dataclass
class Section:
    version: str | None  # None: unreleased
    date: str | None
    title: str
    components: list[Group]
    since: str | None  # the previous version the section counts from

    @property
    def empty(self) -> bool:
        return not any(g.entries for g in self.components)


def base_version(version: str, known: list[str]) -> str | None:
    """The version a section counts from (etcd's rule); ``None`` for the first release."""
    ver = semver.Version.parse(version)
    older = sorted(v for v in (semver.Version.parse(k) for k in known) if v < ver)
    if not older:
        return None
    if ver.patch == 0 and not ver.prerelease:
        minors = [v for v in older if v.patch == 0 and not v.prerelease]
        return str(minors[-1]) if minors else None
    return str(older[-1])


def fragments_for(version: str, by_version: dict[str, list[fr.Fragment]], extra: list[fr.Fragment] = ()) -> list[fr.Fragment]:
    """Fragments a version's section lists; ``extra`` are unreleased ones going into it."""
    ver = semver.Version.parse(version)
    own = [*by_version.get(version, []), *extra]
    if ver.patch != 0 or ver.prerelease:
        picked = own
    else:
        base = base_version(version, list(by_version))
        low = semver.Version.parse(base) if base else None
        picked = []
        for v, frags in by_version.items():
            sv = semver.Version.parse(v)
            if sv < ver and (low is None or sv > low):
                picked += frags
        picked += own
    seen: dict[str, fr.Fragment] = {}
    for f in picked:
        seen.setdefault(f.name, f)
    return list(seen.values())


def group(frags: list[fr.Fragment], config: fr.Config) -> list[Group]:
    types = dict(config.types)
    order = {t: i for i, (t, _) in enumerate(config.types)}
    out = []
    for name, title in config.components:
        entries = sorted((f for f in frags if f.component == name), key=lambda f: (order[f.type], f.name))
        if entries:
            out.append(Group(name, title, [
                {"type": f.type, "type_title": types[f.type], "text": f.text, "ref": f.ref, "link": f.link}
                for f in entries
            ]))
    return out


def sections(root: Path, *, upcoming: tuple[str, str] | None = None) -> list[Section]:
    """Sections newest first. ``upcoming=(version, date)`` renders the unreleased
    fragments as that version (what a release would write) instead of "Unreleased"."""
    changes = root / "changes"
    config = fr.load_config(changes)
    dirs = fr.released_dirs(changes)
    dates = {r.version: r.date for r in rl.load(root / "releases.toml")}
    by_version = {v: fr.read_dir(d, config) for v, d in dirs.items()}
    for v in dates:
        by_version.setdefault(v, [])
    pending = fr.unreleased(changes, config)
    out = []
    versions = sorted(by_version, key=semver.Version.parse, reverse=True)
    if upcoming:
        version, date = upcoming
        by_version.setdefault(version, [])
        versions = sorted(by_version, key=semver.Version.parse, reverse=True)
    elif pending:
        out.append(Section(None, None, "Unreleased", group(pending, config), None))
    for v in versions:
        extra = pending if upcoming and v == upcoming[0] else []
        date = upcoming[1] if upcoming and v == upcoming[0] else dates.get(v, "unreleased")
        frags = fragments_for(v, by_version, extra)
        out.append(Section(v, date, f"v{v} ({date})", group(frags, config), base_version(v, list(by_version))))
    return out


def generate(root: Path, *, upcoming: tuple[str, str] | None = None) -> str:
    """The full text of CHANGELOG.md."""
    return render("changelog.md.j2", sections=sections(root, upcoming=upcoming)).rstrip("\n") + "\n"


def write(root: Path, *, check: bool = False) -> bool:
    """Regenerate ``CHANGELOG.md``; with ``check``, only report whether it is up to date."""
    text = generate(root)
    path = root / "CHANGELOG.md"
    current = path.read_text() if path.exists() else ""
    if check:
        return current == text
    if current != text:
        path.write_text(text)
    return True
