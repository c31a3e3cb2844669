"""Read the compatibility matrix report (``reports/compat/report.json``), tolerantly.

Minimal shape this reader relies on (anything else is ignored)::

    {"results": [{"from": "0.1.0", "to": "0.2.0", "kind": "upgrade", "passed": true}, ...]}

``kind`` is ``upgrade`` or ``downgrade`` (inferred from the versions when
absent); ``passed`` may also be given as ``ok`` (bool) or ``status``
(``"pass"``/``"passed"``/``"ok"``); ``from``/``to`` may also be ``from_version``
/``to_version``. A missing or unreadable report yields ``None`` and the notes
say that no path was verified.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DEFAULT = Path("reports/compat/report.json")


@dataclass(frozen=True)
class Path_:
    source: str
    target: str
    kind: str
    passed: bool


def _version_key(v: str) -> tuple:
    core = v.lstrip("v").split("-")[0].split("+")[0]
    try:
        return tuple(int(p) for p in core.split("."))
    except ValueError:
        return (0,)


def _passed(entry: dict) -> bool:
    for key in ("passed", "ok"):
        if isinstance(entry.get(key), bool):
            return entry[key]
    return str(entry.get("status", "")).lower() in {"pass", "passed", "ok", "success"}


def load(path: Path) -> list[Path_] | None:
    """Upgrade/downgrade paths in the report, or ``None`` when there is no usable report."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        return None
    out = []
    for r in results:
        if not isinstance(r, dict):
            continue
        src = str(r.get("from", r.get("from_version", ""))).lstrip("v")
        dst = str(r.get("to", r.get("to_version", ""))).lstrip("v")
        if not src or not dst:
            continue
        kind = r.get("kind") or ("upgrade" if _version_key(dst) >= _version_key(src) else "downgrade")
        out.append(Path_(src, dst, str(kind), _passed(r)))
    return out


def paths_for(version: str, paths: list[Path_] | None) -> dict[str, list[Path_]] | None:
    """The upgrade paths into ``version`` and downgrade paths out of it."""
    if paths is None:
        return None
    v = version.lstrip("v")
    return {
        "upgrade": [p for p in paths if p.kind == "upgrade" and p.target == v],
        "downgrade": [p for p in paths if p.kind == "downgrade" and p.source == v],
    }
