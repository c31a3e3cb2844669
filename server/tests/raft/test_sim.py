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
