"""Release notes for one version (jinja2): summary, changes, upgrade/downgrade
paths verified by the compatibility matrix, support tiers, install, checksums."""

from __future__ import annotations

from pathlib import Path

from . import changelog, compat
from .render import render


def generate(
    root: Path,
    version: str,
    date: str,
    *,
    sums: dict[str, str],
    images: list[dict] | None = None,
    tiers_markdown: str | None = None,
    compat_report: Path | None = None,
) -> str:
    """Markdown release notes for ``version`` as it would be released on ``date``."""
    section = next(
        s for s in changelog.sections(root, upcoming=(version, date))
        if s.version == version
    )
    counts: dict[str, int] = {}
    for comp in section.components:
        for e in comp.entries:
            counts[e["type_title"]] = counts.get(e["type_title"], 0) + 1
    report = compat_report if compat_report is not None else root / compat.DEFAULT
    paths = compat.paths_for(version, compat.load(report))
    wheel = next((n for n in sums if n.startswith("kvetch-") and n.endswith(".whl")), None)
    return render(
        "notes.md.j2",
        version=version,
        date=date,
        section=section,
        counts=counts,
        paths=paths,
        report=str(report.relative_to(root) if report.is_relative_to(root) else compat.DEFAULT
                   if report.as_posix().endswith(compat.DEFAULT.as_posix()) else report),
        tiers_markdown=tiers_markdown,
        sums=sorted(sums.items()),
        wheel=wheel,
        images=images or [],
    )
