"""Seeded random workloads against the oracle and the target; all answers must match.

Replay one seed:  pytest tests/differential -k random --diff-seed 1234
(or KVETCH_DIFF_SEED=1234). Longer runs: --diff-steps 2000 / KVETCH_DIFF_STEPS.
"""

from __future__ import annotations

import os

import pytest
from differential.harness import Mismatch, Pair
from differential.workload import Workload

DEFAULT_SEEDS = [11, 22, 33, 44]
DEFAULT_STEPS = 200


def _seeds(config: pytest.Config) -> list[int]:
    cli = config.getoption("--diff-seed", default=None)
    if cli:
        return list(cli)
    env = os.environ.get("KVETCH_DIFF_SEED")
    if env:
        return [int(s) for s in env.split(",") if s.strip()]
    return DEFAULT_SEEDS


def _steps(config: pytest.Config) -> int:
    cli = config.getoption("--diff-steps", default=None)
    if cli:
        return int(cli)
    return int(os.environ.get("KVETCH_DIFF_STEPS", DEFAULT_STEPS))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "seed" in metafunc.fixturenames:
        metafunc.parametrize("seed", _seeds(metafunc.config), ids=lambda s: f"seed{s}")


def test_random_workload(pair: Pair, seed: int, request: pytest.FixtureRequest) -> None:
    steps = _steps(request.config)
    work = Workload(pair, seed)
    try:
        for _ in range(steps):
            work.step()
        work.finish()
    except Mismatch as exc:
        recent = "\n".join(pair.log[-15:])
        raise Mismatch(
            f"seed {seed} diverged after {len(pair.log)} requests (replay: pytest tests/differential "
            f"-k random --diff-seed {seed} --diff-steps {steps})\n{exc}\nlast requests:\n{recent}"
        ) from None
    for note in pair.tie_notes:
        print(f"tie-order difference (accepted): {note}")
    assert work.checkpoints > 0
    assert len(pair.log) > steps // 2
