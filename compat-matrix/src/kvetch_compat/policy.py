"""Support policy: which upgrade/downgrade paths a flavour declares unsupported.

A plan marks a step "expected failure" only when a rule here says so; every
other failure is unexpected and fails the CI gate.  Rules are data, one per
flavour, each with the document that states it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    flavour: str
    #: replacing a member by an older minor requires Downgrade ENABLE first
    binary_downgrade_needs_api: bool
    #: the Downgrade API exists from this (major, minor) on
    downgrade_api_since: tuple[int, int]
    source: str


POLICIES = {
    "kvetch": Policy(
        "kvetch", binary_downgrade_needs_api=True, downgrade_api_since=(0, 0),
        source="docs/DESIGN.md (Versions): the Downgrade API lowers the cluster version by one minor so that "
        "older binaries can replace newer ones; one minor at a time",
    ),
    "etcd": Policy(
        "etcd", binary_downgrade_needs_api=False, downgrade_api_since=(3, 5),
        source="etcd.io/docs/v3.5/downgrades/downgrade_3_5: 3.5 -> 3.4 is a rolling downgrade (stop each 3.5 "
        "process, start 3.4 on its data); etcd.io/docs/v3.6/upgrades: one minor at a time",
    ),
}


def policy_for(flavour: str) -> Policy:
    return POLICIES[flavour]


def unsupported_replace(flavour: str, cluster_minor: tuple[int, int], new_minor: tuple[int, int],
                        downgrade_enabled: bool) -> str | None:
    """Reason why replacing a member by a binary of `new_minor` is unsupported, or None."""
    pol = policy_for(flavour)
    if new_minor[0] != cluster_minor[0]:
        return f"{flavour}: changing the major version in place is unsupported ({pol.source})"
    delta = new_minor[1] - cluster_minor[1]
    if delta > 1:
        return f"{flavour}: skipping a minor on upgrade is unsupported ({pol.source})"
    if delta < -1:
        return f"{flavour}: downgrading more than one minor is unsupported ({pol.source})"
    if delta == -1 and pol.binary_downgrade_needs_api and not downgrade_enabled:
        return f"{flavour}: replacing a member by an older minor without Downgrade ENABLE is unsupported ({pol.source})"
    return None


def has_downgrade_api(flavour: str, minor: tuple[int, int]) -> bool:
    return minor >= policy_for(flavour).downgrade_api_since


def cancel_without_downgrade_error(flavour: str) -> str | None:
    """The error a CANCEL with no downgrade in flight must get (None: it must succeed).

    etcd 3.5 answers FAILED_PRECONDITION "no inflight downgrade job"; kvetch follows etcd 3.6
    and the project's issue 7: cancelling when nothing is in progress is not an error.
    """
    return None if flavour == "kvetch" else "FAILED_PRECONDITION"
