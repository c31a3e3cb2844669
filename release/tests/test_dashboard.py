"""The support-tier dashboard rendered in headless Chromium, checked through the
DOM (--dump-dom) and a screenshot."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from kvetch_release import evidence, releases, tiers

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures" / "evidence"
COMMIT = "c0ffee" + "0" * 34
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


class Cells(HTMLParser):
    """Collects the evidence and tier cells of the rendered DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.platform: str | None = None
        self.cells: dict[tuple[str, str], str] = {}
        self.tiers: dict[str, str] = {}
        self.history: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "tr" and "data-platform" in a:
            self.platform = a["data-platform"]
        if tag == "tr" and "data-version" in a:
            self.history.append(a["data-version"])
        if tag == "td" and self.platform and "data-kind" in a:
            self.cells[(self.platform, a["data-kind"])] = a["data-status"]
        if tag == "td" and self.platform and "data-tier" in a:
            self.tiers[self.platform] = a["data-tier"]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dash")
    rel = out / "releases.toml"
    releases.append(rel, releases.Release("0.0.9", "9" * 40, "2026-11-01", tiers={"linux/amd64/py3.11": 2}))
    report = tiers.compute(tiers.load_policy(ROOT / tiers.POLICY), evidence.load_dir(FIXTURES), COMMIT)
    return tiers.write(report, out, version="0.1.0", releases_file=rel)["html"]


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    assert CHROMIUM, "Debian chromium is not installed (.ci/apt-packages.txt lists it)"
    profile = tmp / "profile"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def test_dashboard_dom(dashboard: Path, tmp_path: Path) -> None:
    proc = _chromium(tmp_path, "--dump-dom", dashboard.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert "<title>kvetch v0.1.0 support tiers</title>" in dom
    cells = Cells()
    cells.feed(dom)
    assert cells.tiers == {"linux/amd64/py3.11": "1", "linux/arm64/py3.11": "2",
                           "linux/ppc64le/py3.11": "3", "linux/s390x/py3.11": "0"}
    assert cells.cells[("linux/s390x/py3.11", "smoke")] == "fail"
    assert cells.cells[("linux/arm64/py3.11", "robustness")] == "missing"
    assert cells.cells[("linux/amd64/py3.11", "robustness")] == "pass"
    assert len(cells.cells) == 4 * 6  # full platform x evidence grid
    assert cells.history == ["0.1.0", "0.0.9"]  # newest first, with the recorded release


def test_dashboard_screenshot(dashboard: Path, tmp_path: Path) -> None:
    shot = tmp_path / "dash.png"
    proc = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,900", dashboard.as_uri())
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 900)
    assert len(data) > 20_000  # a rendered coloured grid, not a blank page
    assert re.search(rb"IDAT", data)
