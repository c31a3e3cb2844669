"""Known failures: findings already recorded (FINDINGS.md) that should not fail the gate again.

Each entry names a finding id and matches failing steps by versions, scenario
kind (glob) and a regular expression over the failure text.  A matched step
becomes `known` (reported, with its finding id, amber in the matrix); anything
not matched stays an unexpected failure.  This is not policy: policy marks
paths unsupported before they run (expected failure); known failures are bugs
of a version that were observed and written down.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "known-failures.toml"


@dataclass(frozen=True)
class Known:
    id: str
    versions: tuple[str, ...]
    kinds: tuple[str, ...]
    match: re.Pattern[str]
    note: str = ""

    def matches(self, cell: dict[str, Any], text: str) -> bool:
        if self.versions and tuple(cell["versions"]) != self.versions:
            return False
        if not any(fnmatch.fnmatch(cell["kind"], k) for k in self.kinds):
            return False
        return bool(self.match.search(text))


def load(path: Path | None) -> list[Known]:
    if path is None or not path.is_file():
        return []
    data = tomllib.loads(path.read_text())
    out = []
    for e in data.get("known", []):
        out.append(Known(e["id"], tuple(e.get("versions", [])), tuple(e.get("kinds", ["*"])),
                         re.compile(e["match"]), e.get("note", "")))
    return out


def failure_parts(step: dict[str, Any]) -> list[str]:
    """Each failing element of a step (the action, each failed check), with the step's log lines as context."""
    logs = "\n".join(step.get("logs", []))
    parts = []
    if step["action_result"].get("ok") is False:
        parts.append(step["action_result"]["detail"])
    parts += [f"{c['name']}: {c['detail']}" for c in step.get("checks", []) if not c["ok"]]
    return [f"{p}\n{logs}" for p in parts]


def apply(cell: dict[str, Any], known: list[Known]) -> dict[str, Any]:
    """Re-label failed steps whose every failing element a known entry matches; recompute the cell outcome."""
    if not known:
        return cell
    for step in cell.get("steps", []):
        if step["outcome"] != "fail":
            continue
        ids: set[str] = set()
        covered = True
        for part in failure_parts(step):
            hits = [k.id for k in known if k.matches(cell, part)]
            if not hits:
                covered = False
                break
            ids.update(hits)
        if covered and ids:
            step["outcome"] = "known"
            step["known"] = sorted(ids)
    outs = [s["outcome"] for s in cell.get("steps", [])]
    if cell.get("outcome") != "error":
        cell["outcome"] = next((o for o in ("fail", "known", "xfail", "xpass") if o in outs), "pass")
    cell["known"] = sorted({i for s in cell.get("steps", []) for i in s.get("known", [])})
    return cell
