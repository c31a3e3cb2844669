"""Support tiers: read the policy (``support-tiers.toml``), compute each platform's
tier from the evidence, and write JSON, Markdown and an HTML dashboard."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from . import releases
from .evidence import Run
from .render import render

POLICY = Path("support-tiers.toml")


@dataclass(frozen=True)
class Tier:
    level: int
    name: str
    meaning: str
    requires: tuple[str, ...]


@dataclass(frozen=True)
class Platform:
    id: str
    os: str
    arch: str
    python: str
    runner: str


@dataclass(frozen=True)
class Policy:
    tiers: tuple[Tier, ...]
    platforms: tuple[Platform, ...]
    evidence: dict[str, dict]

    @property
    def kinds(self) -> list[str]:
        return list(self.evidence)

    def platform(self, pid: str) -> Platform:
        return next(p for p in self.platforms if p.id == pid)


def load_policy(path: Path) -> Policy:
    data = tomllib.loads(path.read_text())
    tiers = tuple(sorted(
        (Tier(int(t["level"]), t["name"], t.get("meaning", ""), tuple(t["requires"])) for t in data["tier"]),
        key=lambda t: t.level,
    ))
    evidence = dict(data.get("evidence", {}))
    for t in tiers:
        unknown = set(t.requires) - set(evidence)
        if unknown:
            raise ValueError(f"{path}: {t.name} requires undeclared evidence {sorted(unknown)}")
    plats = tuple(Platform(p["id"], p.get("os", "linux"), p["arch"], str(p["python"]), p.get("runner", "native"))
                  for p in data["platform"])
    return Policy(tiers, plats, evidence)


def _status(runs: list[Run]) -> dict:
    if not runs:
        return {"status": "missing", "tests": 0, "failures": 0, "emulated": False, "sources": [], "detail": ""}
    failed = [r for r in runs if not r.passed]
    return {
        "status": "fail" if failed else "pass",
        "tests": sum(r.tests - r.skipped for r in runs),
        "failures": sum(r.failures + r.errors for r in runs),
        "emulated": any(r.emulated for r in runs),
        "sources": [r.source for r in runs],
        "detail": "; ".join(r.detail for r in failed if r.detail)
                  or ("no test ran" if failed and all(r.tests - r.skipped == 0 for r in failed) else ""),
    }


def compute(policy: Policy, runs: list[Run], commit: str | None = None) -> dict:
    """The tiers report: for each platform its evidence grid and computed tier
    (the best tier whose required kinds all passed; 0 when none)."""
    if commit:
        runs = [r for r in runs if r.commit == commit]
    platforms = []
    for plat in policy.platforms:
        grid = {kind: _status([r for r in runs if r.platform == plat.id and r.kind == kind]) for kind in policy.kinds}
        tier = next((t for t in policy.tiers if all(grid[k]["status"] == "pass" for k in t.requires)), None)
        platforms.append({
            "id": plat.id, "os": plat.os, "arch": plat.arch, "python": plat.python, "runner": plat.runner,
            "tier": tier.level if tier else 0, "tier_name": tier.name if tier else "Unsupported",
            "evidence": grid,
        })
    return {
        "commit": commit or "",
        "kinds": policy.kinds,
        "tiers": [{"level": t.level, "name": t.name, "meaning": t.meaning, "requires": list(t.requires)} for t in policy.tiers],
        "platforms": platforms,
    }


def supported_arches(report: dict) -> list[str]:
    return sorted({p["arch"] for p in report["platforms"] if p["tier"]})


def to_markdown(report: dict) -> str:
    return render("tiers.md.j2", report=report).strip()


def history(releases_file: Path, report: dict, version: str) -> dict:
    """Tier per platform for every recorded release, plus this build (``version``)."""
    rows = [{"version": r.version, "date": r.date, "tiers": r.tiers} for r in releases.load(releases_file)]
    rows = [r for r in rows if r["version"] != version]
    rows.append({"version": version, "date": "this build", "tiers": {p["id"]: p["tier"] for p in report["platforms"]}})
    return {"rows": list(reversed(rows)), "platforms": [p["id"] for p in report["platforms"]]}


def write(report: dict, out: Path, *, version: str, releases_file: Path) -> dict[str, Path]:
    """Write ``tiers.json``, ``tiers.md`` and ``dashboard/index.html`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "tiers.json", "markdown": out / "tiers.md", "html": out / "dashboard" / "index.html"}
    paths["json"].write_text(json.dumps(report, indent=2) + "\n")
    paths["markdown"].write_text(to_markdown(report) + "\n")
    paths["html"].parent.mkdir(exist_ok=True)
    paths["html"].write_text(render("dashboard.html.j2", report=report, version=version,
                                    history=history(releases_file, report, version)))
    return paths
