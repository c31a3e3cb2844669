"""Test evidence: JUnit XML from pytest runs and JSON results of builds and image
smoke tests, each tagged with the platform it ran on, the kind of evidence
(``unit``, ``integration``, ``e2e``, ``robustness``, ``build``, ``smoke``) and the
commit. Files live under ``reports/evidence/`` (any depth)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

PREFIX = "kvetch."


@dataclass(frozen=True)
class Run:
    platform: str
    kind: str
    commit: str
    tests: int
    failures: int
    errors: int
    skipped: int
    emulated: bool
    source: str
    detail: str = ""

    @property
    def passed(self) -> bool:
        """Green: something really ran and nothing failed."""
        return self.failures == 0 and self.errors == 0 and self.tests - self.skipped > 0

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def tag_junit(path: Path, *, platform: str, kind: str, commit: str, emulated: bool) -> None:
    """Add the evidence tags as testsuite properties of a pytest JUnit XML file."""
    tree = ET.parse(path)
    root = tree.getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for suite in suites:
        props = suite.find("properties")
        if props is None:
            props = ET.Element("properties")
            suite.insert(0, props)
        for name, value in (("platform", platform), ("kind", kind), ("commit", commit), ("emulated", str(emulated).lower())):
            for old in [p for p in props.findall("property") if p.get("name") == PREFIX + name]:
                props.remove(old)
            ET.SubElement(props, "property", name=PREFIX + name, value=value)
    tree.write(path, encoding="utf-8", xml_declaration=True)


def write_json(path: Path, *, platform: str, kind: str, commit: str, emulated: bool, checks: list[dict]) -> Path:
    """Write a build/smoke result: ``checks`` is a list of {name, passed, detail}."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "kvetch_evidence": 1, "platform": platform, "kind": kind, "commit": commit,
        "emulated": emulated, "checks": checks,
    }, indent=2) + "\n")
    return path


def _from_junit(path: Path) -> list[Run]:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return []
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    runs = []
    for suite in suites:
        props = {p.get("name", ""): p.get("value", "") for p in suite.iter("property")}
        if PREFIX + "platform" not in props:
            continue  # untagged: not evidence
        runs.append(Run(
            platform=props[PREFIX + "platform"], kind=props.get(PREFIX + "kind", "unit"),
            commit=props.get(PREFIX + "commit", ""),
            tests=int(suite.get("tests", 0)), failures=int(suite.get("failures", 0)),
            errors=int(suite.get("errors", 0)), skipped=int(suite.get("skipped", 0)),
            emulated=props.get(PREFIX + "emulated") == "true", source=str(path),
        ))
    return runs


def _from_json(path: Path) -> list[Run]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or data.get("kvetch_evidence") != 1:
        return []
    checks = data.get("checks", [])
    failed = [c for c in checks if not c.get("passed")]
    return [Run(
        platform=data["platform"], kind=data["kind"], commit=data.get("commit", ""),
        tests=len(checks), failures=len(failed), errors=0, skipped=0,
        emulated=bool(data.get("emulated")), source=str(path),
        detail="; ".join(f"{c['name']}: {c.get('detail', '')}" for c in failed),
    )]


def load_dir(directory: Path) -> list[Run]:
    """Every tagged run under ``directory`` (JUnit ``*.xml`` and evidence ``*.json``)."""
    if not directory.is_dir():
        return []
    runs: list[Run] = []
    for path in sorted(directory.rglob("*")):
        if path.suffix == ".xml":
            runs += _from_junit(path)
        elif path.suffix == ".json":
            runs += _from_json(path)
    return runs
