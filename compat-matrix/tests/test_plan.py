"""Plan generation: seeded determinism, printing, JSON round trip, replay and policy marking."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from kvetch_compat.plan import KINDS, Plan, generate

ETCD = ["etcd@3.4.23", "etcd@3.5.1"]


def test_same_seed_same_plan_and_different_seed_differs() -> None:
    a = generate(ETCD, 42).to_json()
    assert a == generate(ETCD, 42).to_json()
    assert any(generate(ETCD, s).to_json() != a for s in (1, 2, 3))


def test_subset_of_scenarios_reproduces_the_same_cells() -> None:
    full = generate(ETCD, 9)
    sub = generate(ETCD, 9, scenarios="upgrade-rolling,snapshot-catchup")
    by_id = {c.id: c for c in full.cells}
    assert sub.cells
    for c in sub.cells:
        assert c == by_id[c.id]


def test_every_kind_the_versions_allow_is_planned() -> None:
    plan = generate(ETCD, 1)
    kinds = {c.kind for c in plan.cells}
    assert kinds == set(KINDS) - {"upgrade-chain"}  # a chain needs three versions
    chain = generate(["kvetch@0.1.0", "kvetch@0.2.0", "kvetch@0.3.0"], 1, scenarios="upgrade-chain")
    assert [c.kind for c in chain.cells] == ["upgrade-chain"]
    replaced = [s.args["version"] for s in chain.cells[0].steps if s.action == "replace"]
    assert replaced == ["kvetch@0.2.0"] * 3 + ["kvetch@0.3.0"] * 3


def test_render_is_a_numbered_tree() -> None:
    plan = generate(ETCD, 5, scenarios="upgrade-rolling:leader-first")
    text = plan.render()
    lines = text.splitlines()
    assert lines[0] == "plan seed=5 members=3 versions=etcd@3.4.23,etcd@3.5.1"
    assert lines[1].startswith("└── upgrade-rolling[leader-first] etcd@3.4.23->etcd@3.5.1")
    assert " 1. start-cluster m0=etcd@3.4.23, m1=etcd@3.4.23, m2=etcd@3.4.23" in lines[2]
    # leader first: the member moved to leadership is the first one replaced
    leader = plan.cells[0].steps[1].args["to"]
    assert plan.cells[0].steps[2].args == {"member": leader, "version": "etcd@3.5.1"}
    assert plan.cells[0].steps[-1].expect["cluster_version"] == "3.5"
    assert plan.cells[0].steps[2].expect["cluster_version"] == "3.4"


def test_json_round_trip_and_selection() -> None:
    plan = generate(ETCD, 11)
    again = Plan.from_json(plan.to_json())
    assert again == plan
    assert again.render() == plan.render()
    one = plan.select([plan.cells[2].id])
    assert [c.id for c in one.cells] == [plan.cells[2].id]


def test_policy_marks_expected_failures_only_where_unsupported() -> None:
    kv = generate(["kvetch@0.1.0", "kvetch@0.2.0"], 3, scenarios="downgrade-binary-only,downgrade-rolling")
    binary = next(c for c in kv.cells if c.kind == "downgrade-binary-only")
    assert binary.steps[-1].expected_failure and "without Downgrade ENABLE" in binary.steps[-1].expected_failure
    api = next(c for c in kv.cells if c.kind == "downgrade-rolling")
    assert not any(s.expected_failure for s in api.steps)
    # etcd documents 3.5 -> 3.4 as a plain rolling binary replacement: not an expected failure
    et = generate(ETCD, 3, scenarios="downgrade-binary-only")
    assert not any(s.expected_failure for s in et.cells[0].steps)
    skip = generate(["kvetch@0.1.0", "kvetch@0.3.0"], 3, scenarios="upgrade-rolling")
    assert any(s.expected_failure and "skipping a minor" in s.expected_failure for s in skip.cells[0].steps)
    assert not [c for c in skip.cells if c.kind.startswith("downgrade-rolling")]


def test_downgrade_expectations_follow_the_model() -> None:
    plan = generate(ETCD, 4, scenarios="downgrade-rolling")
    steps = plan.cells[0].steps
    enable = next(s for s in steps if s.action == "downgrade" and s.args["action"] == "enable")
    assert enable.expect["downgrade"] == {"enabled": True, "target": "3.4"}
    assert enable.expect["cluster_version"] == "3.4"
    assert steps[-1].action == "wait-downgrade-complete"
    # every member on etcd 3.4: no member has a downgrade state to read any more
    assert steps[-1].expect["downgrade"] is None
    kv = generate(["kvetch@0.1.0", "kvetch@0.2.0"], 4, scenarios="downgrade-rolling").cells[0].steps
    assert kv[-1].expect["downgrade"] == {"enabled": False, "target": ""}
    assert kv[-1].expect["cluster_version"] == "0.1"


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError):
        generate(ETCD, 1, scenarios="no-such-kind")
    with pytest.raises(ValueError):
        generate(ETCD, 1, members=4)
    with pytest.raises(ValueError):
        generate(["etcd@latest"], 1)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "import sys; from kvetch_compat.cli import main; sys.exit(main())",
                           *args], capture_output=True, text=True, timeout=60)


def test_cli_plan_json_lists_cells_and_saved_plan_replays(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "plan.json"
    p = _cli("plan", "--versions", ",".join(ETCD), "--seed", "8", "--json", "--out", str(out))
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert [x["cell"] for x in data["include"]] == [c["id"] for c in data["plan"]["cells"]]
    saved = Plan.from_json(out.read_text())
    assert saved == generate(ETCD, 8)
    tree = _cli("plan", "--versions", ",".join(ETCD), "--seed", "8")
    assert tree.stdout.strip() == saved.render()


def test_cli_fails_clearly_without_a_releases_file_entry() -> None:
    p = _cli("run", "--versions", "kvetch@9.9.9,kvetch@9.9.8", "--seed", "1", "--scenarios", "upgrade-rolling",
             "--report", "/nonexistent/never-written")
    assert p.returncode == 2
    assert "9.9" in p.stderr
