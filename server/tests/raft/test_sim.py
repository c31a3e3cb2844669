"""The deterministic simulator: many seeded schedules without a violation, and
proof that the checker catches deliberately injected bugs."""

from __future__ import annotations

import pytest
from kvetch.raft import sim

CI_SEEDS = 300
CI_STEPS = 1000


def test_simulator_seeded_schedules_have_no_violation():
    failures = [r for r in (sim.run_seed(s, CI_STEPS) for s in range(CI_SEEDS)) if not r.ok]
    assert not failures, "\n".join(
        f"seed {r.seed}: {r.error} (python -m kvetch.raft.sim --seed {r.seed} --steps {r.step})"
        for r in failures[:5]
    )


def test_simulator_is_deterministic_per_seed():
    runs = []
    for _ in range(2):
        s = sim.Simulation(42, 600)
        s.run()
        runs.append((s.stats, s.applied, s.leader_of_term))
    assert runs[0] == runs[1]


def test_simulator_exercises_faults_and_features():
    totals = {"commits": 0, "elections": 0, "snapshots": 0, "conf_changes": 0, "reads": 0}
    for seed in range(40):
        s = sim.Simulation(seed, CI_STEPS)
        s.run()
        for k in totals:
            totals[k] += s.stats[k]
    assert all(v > 10 for v in totals.values()), totals


@pytest.mark.parametrize(("bug", "seeds"), [
    ("double_vote", 100),
    ("no_log_check", 100),
    ("stale_read", 300),
    ("ack_before_persist", 300),
])
def test_simulator_catches_injected_bug(bug, seeds):
    for seed in range(seeds):
        res = sim.run_seed(seed, CI_STEPS, bug=bug)
        if not res.ok:
            # and the replay command reproduces it
            again = sim.run_seed(seed, res.step, bug=bug)
            assert not again.ok and again.error == res.error
            return
    pytest.fail(f"injected bug {bug!r} went unnoticed over {seeds} seeds")


def test_simulator_cli_prints_summary_line(capsys):
    assert sim.main(["--seeds", "3", "--steps", "200", "--no-progress"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "3 schedules, 0 violations"


def test_simulator_cli_prints_replay_command_for_failing_seed(capsys):
    assert sim.main(["--seeds", "40", "--steps", "600", "--bug", "double_vote", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "replay: python -m kvetch.raft.sim --seed " in out and "--bug double_vote" in out
    assert out.strip().splitlines()[-1].startswith("40 schedules, ")


# ------------------------------------------------ a scripted Figure 8 (paper §5.4.2)
def _pump(s: sim.Simulation, ids: set[int], until=None, allow=lambda m: True) -> None:
    """Handle Readies of nodes in ids and deliver messages among them (others are
    lost) until quiet or ``until()`` holds; messages failing ``allow`` are lost."""
    for _ in range(200):
        if until is not None and until():
            return
        moved = False
        for i in sorted(ids):
            n = s.nodes[i]
            if n.rn is not None and n.rn.has_ready():
                s._handle_ready(n)
                moved = True
        s._check()
        if s.net:
            _, m = s.net.pop(0)
            if m.frm in ids and m.to in ids and allow(m) and s.nodes[m.to].rn is not None:
                s.nodes[m.to].rn.step(m)
            s._check()
            moved = True
        if not moved:
            return


def _figure8(bug: str | None) -> None:
    s = sim.Simulation(0, 0, bug=bug, shape={
        "voters": 3, "learners": 0, "pre_vote": 0, "check_quorum": 0, "max_msg_size": 16})
    s.p_drop = s.p_dup = 0.0
    n = s.nodes
    everyone = {1, 2, 3}
    _pump(s, everyone)
    n[1].rn.campaign()
    _pump(s, everyone)
    assert n[1].rn.is_leader
    # S1 (term 2) appends "e" at index 5 but replicates it to nobody, then crashes
    n[1].rn.propose(b"e")
    s._handle_ready(n[1])
    s.net.clear()
    s._crash(n[1])
    # S3 wins term 3 with S2's vote, appends an entry at 5 only locally, crashes
    n[3].rn.campaign()
    _pump(s, {2, 3}, until=lambda: n[3].rn.is_leader)
    s._handle_ready(n[3])
    s.net.clear()
    s._crash(n[3])
    # S1 restarts, wins term 4 with S2, and copies "e" (term 2) to S2 -- but its own
    # term-4 entry does not reach S2 before S1 crashes again
    s._start(n[1])
    for _ in range(3):
        if n[1].rn.is_leader:
            break
        n[1].rn.campaign()
        _pump(s, {1, 2}, until=lambda: n[1].rn.is_leader)
    assert n[1].rn.is_leader and n[1].rn.term == 4
    _pump(s, {1, 2}, allow=lambda m: not (
        m.type == 3 and any(e.term == 4 for e in m.entries) and n[2].storage.last_index() >= 5))
    assert n[2].storage.term(5) == 2
    s._crash(n[1])
    # S3 restarts and, more up to date than S2 (term 3 > 2), wins term 5 and
    # overwrites index 5: fine unless "e" had been (wrongly) committed
    s._start(n[3])
    for _ in range(3):
        if n[3].rn.is_leader:
            break
        n[3].rn.campaign()
        _pump(s, {2, 3}, until=lambda: n[3].rn.is_leader)
    assert n[3].rn.is_leader
    _pump(s, {2, 3})
    s._start(n[1])
    _pump(s, everyone)


def test_figure8_schedule_is_safe_with_current_term_commit_rule():
    _figure8(None)


def test_figure8_schedule_catches_commit_of_previous_term_entry_by_counting():
    with pytest.raises(sim.Violation, match=r"leader completeness|committed|state machine"):
        _figure8("commit_prev_term")
