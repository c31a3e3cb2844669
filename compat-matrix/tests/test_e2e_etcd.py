"""End to end on real etcd: a small matrix through the real CLI, reports and exit status.

The upgrade 3.4.23 -> 3.5.1 cell must pass every check; the binary-only
downgrade 3.5.1 -> 3.4.23 (which etcd's docs describe as a rolling
replacement) must be caught as an unexpected failure, which is what makes
the tool a gate.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kvetch_compat import known

pytestmark = [pytest.mark.etcd34, pytest.mark.slow]

needs_etcd34 = pytest.mark.skipif(not Path("/usr/bin/etcd").exists(), reason="Debian etcd-server 3.4.23 missing")


def _run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "import sys; from kvetch_compat.cli import main; sys.exit(main())",
                           *args], capture_output=True, text=True, timeout=timeout)


@needs_etcd34
def test_upgrade_34_to_35_passes_every_check(tmp_path: Path) -> None:
    out = tmp_path / "report"
    p = _run("run", "--versions", "etcd@3.4.23,etcd@3.5.1", "--scenarios", "upgrade-rolling:leader-first",
             "--seed", "5", "--report", str(out), "--jobs", "1", "--workdir", str(tmp_path / "work"))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "└── upgrade-rolling[leader-first]" in p.stdout  # the plan is printed before it runs
    rep = json.loads((out / "report.json").read_text())
    assert rep["gate"] == "pass"
    (cell,) = rep["cells"]
    assert cell["outcome"] == "pass"
    names = {c["name"] for s in cell["steps"] for c in s["checks"]}
    assert {"alive-healthy", "server-version", "cluster-version", "downgrade-state", "member-list", "hashkv",
            "data-equal", "acknowledged-writes", "linearizable", "watch", "logs", "leader", "progress", "storage-version"} <= names
    cv = [next(c for c in s["checks"] if c["name"] == "cluster-version")["detail"] for s in cell["steps"]]
    assert cv[0].startswith("3.4") and cv[-1].startswith("3.5")
    assert cell["ops"]["ok"] > 50
    assert (out / "index.html").read_text().count("upgrade-rolling[leader-first]") >= 2
    assert "✅ pass" in (out / "report.md").read_text()
    # replay the saved plan exactly (same cells, same steps)
    p2 = _run("plan", "--versions", "etcd@3.4.23,etcd@3.5.1", "--scenarios", "upgrade-rolling:leader-first",
              "--seed", "5", "--json")
    assert json.loads(p2.stdout)["plan"] == rep["plan"]


@needs_etcd34
def test_binary_downgrade_35_to_34_is_an_unexpected_failure(tmp_path: Path) -> None:
    out = tmp_path / "report"
    p = _run("run", "--versions", "etcd@3.4.23,etcd@3.5.1", "--scenarios", "downgrade-binary-only",
             "--seed", "5", "--report", str(out), "--jobs", "1", "--workdir", str(tmp_path / "work"), "--known", "")
    assert p.returncode == 1, p.stdout[-3000:] + p.stderr[-3000:]
    rep = json.loads((out / "report.json").read_text())
    (cell,) = rep["cells"]
    assert cell["outcome"] == "fail"
    step = cell["steps"][1]
    assert step["outcome"] == "fail" and not step["expected_failure"]
    # etcd 3.4.23 refuses the 3.5 data dir; its fatal log line is quoted in the report
    assert any("server version is lower than determined cluster version" in line for line in step["logs"])
    assert "❌ FAIL" in (out / "report.md").read_text()
    # the recorded finding (F3 in FINDINGS.md) turns exactly this failure into a known one
    cell = known.apply(cell, known.load(known.DEFAULT_FILE))
    assert cell["outcome"] == "known" and cell["known"] == ["F3"]


def test_workflow_passes_actionlint_and_zizmor() -> None:
    wf = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "compat.yml"
    zizmor = shutil.which("zizmor")
    actionlint = shutil.which("actionlint")
    if not zizmor and not actionlint:
        pytest.skip("neither actionlint nor zizmor installed (TEST_DEPS installs both)")
    if actionlint:
        r = subprocess.run([actionlint, str(wf)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
    if zizmor:
        r = subprocess.run([zizmor, "--offline", str(wf)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr


@needs_etcd34
def test_replay_of_a_saved_plan_and_merge_of_fanned_out_reports(tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    p = _run("plan", "--versions", "etcd@3.4.23,etcd@3.5.1", "--scenarios", "mixed-steady:all", "--seed", "11",
             "--out", str(plan_file), "--json")
    cells = [c["cell"] for c in json.loads(p.stdout)["include"]]
    assert len(cells) == 4
    parts = tmp_path / "parts"
    for i, cell in enumerate(cells[:2]):  # two "CI jobs", one cell each
        r = _run("replay", str(plan_file), "--cells", cell, "--report", str(parts / str(i)), "--jobs", "1",
                 "--workdir", str(tmp_path / "work"))
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        rep = json.loads((parts / str(i) / "report.json").read_text())
        assert [c["id"] for c in rep["cells"]] == [cell]
        assert rep["plan"] == json.loads(plan_file.read_text())
    m = _run("merge", str(parts), "--report", str(tmp_path / "merged"))
    assert m.returncode == 0, m.stdout + m.stderr
    merged = json.loads((tmp_path / "merged" / "report.json").read_text())
    assert [c["id"] for c in merged["cells"]] == cells[:2]
    assert merged["gate"] == "pass"
