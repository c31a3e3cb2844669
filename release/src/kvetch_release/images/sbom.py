"""A CycloneDX 1.5 JSON SBOM of one image: the Python distributions of the app
layer (from their ``.dist-info``) and the Debian packages named for the base layer."""

from __future__ import annotations

import email.parser
import json
import uuid
from pathlib import Path

from .app import SITE


def python_components(stage: Path) -> list[dict]:
    comps = []
    for info in sorted((stage / SITE).glob("*.dist-info")):
        meta = email.parser.Parser().parsestr((info / "METADATA").read_text(errors="replace"), headersonly=True)
        name, version = meta["Name"], meta["Version"]
        comps.append({"type": "library", "name": name, "version": version,
                      "purl": f"pkg:pypi/{name.lower().replace('_', '-')}@{version}"})
    return comps


def write(path: Path, *, stage: Path, arch: str, version: str, debian_packages: tuple[str, ...]) -> Path:
    doc = {
        "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'kvetch/{version}/{arch}')}",
        "metadata": {"component": {"type": "container", "name": "kvetch", "version": version,
                                   "properties": [{"name": "platform", "value": f"linux/{arch}"}]}},
        "components": python_components(stage) + [
            {"type": "operating-system" if p == "base-files" else "library", "name": p,
             "purl": f"pkg:deb/debian/{p}?distro=bookworm&arch={arch}"} for p in debian_packages
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path
