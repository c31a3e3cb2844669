"""Test plans as data: generated from a seed and a version list, printed, saved and replayed.

A plan is a list of cells; a cell is one scenario on one version pair (or
chain), a list of numbered steps, each with the state expected after it.
The generator is pure: same seed and versions give the same plan, byte for
byte, and `Plan.from_json(plan.to_json())` round-trips.
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import asdict, dataclass, field
from typing import Any

from . import policy
from .versions import VersionSpec, declared_version, major_minor

SCHEMA = 1

#: kind -> variants (first is the default when the seed does not choose)
KINDS: dict[str, list[str]] = {
    "upgrade-rolling": ["leader-first", "leader-last", "random"],
    "upgrade-chain": ["random"],
    "downgrade-rolling": ["leader-first", "leader-last", "random"],
    "downgrade-partial-cancel": ["one-member"],
    "downgrade-cancel": ["before-enable", "after-enable", "restart-after-cancel"],
    "downgrade-api-errors": ["validate-enable"],
    "downgrade-then-upgrade": ["random"],
    "downgrade-binary-only": ["one-member"],
    "downgrade-api-mixed": ["enable-via-new", "enable-then-recover"],
    "mixed-steady": ["minority-old/leader-old", "minority-old/leader-new",
                     "majority-old/leader-old", "majority-old/leader-new"],
    "restart-mid-upgrade": ["sigterm", "sigkill"],
    "restart-mid-downgrade": ["sigterm", "sigkill"],
    "membership-mid-upgrade": ["add", "remove"],
    "snapshot-catchup": ["old-leader"],
    "clients": ["all"],
}
PAIR_KINDS = [k for k in KINDS if k not in ("upgrade-chain", "clients")]


@dataclass
class Step:
    n: int
    action: str
    args: dict[str, Any]
    expect: dict[str, Any]
    expected_failure: str | None = None

    def describe(self) -> str:
        a = self.args
        if self.action == "start-cluster":
            body = ", ".join(f"{k}={v}" for k, v in a["members"].items())
        elif self.action == "downgrade":
            body = a["action"] + (f" {a['target']}" if a.get("target") else "")
            if a.get("via"):
                body += f" via {a['via']}"
            if a.get("expect_error"):
                body += f" (expect error {a['expect_error']})"
            if a.get("any_reply"):
                body += " (any reply; members must survive)"
        else:
            body = ", ".join(f"{k}={v}" for k, v in sorted(a.items()) if k != "recovery")
        if a.get("recovery"):
            body += " (recovery step: runs even after a fatal failure)"
        text = f"{self.n:>2}. {self.action} {body}".rstrip()
        if self.expected_failure:
            text += f"  [expected failure: {self.expected_failure}]"
        return text


@dataclass
class Cell:
    id: str
    kind: str
    variant: str
    versions: list[str]
    seed: int
    members: int
    steps: list[Step] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    seed: int
    versions: list[str]
    members: int
    cells: list[Cell]
    schema: int = SCHEMA

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        if d.get("schema") != SCHEMA:
            raise ValueError(f"plan schema {d.get('schema')} is not {SCHEMA}")
        cells = [Cell(**{**c, "steps": [Step(**s) for s in c["steps"]]}) for c in d["cells"]]
        return cls(d["seed"], d["versions"], d["members"], cells, d["schema"])

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return cls.from_dict(json.loads(text))

    def render(self) -> str:
        lines = [f"plan seed={self.seed} members={self.members} versions={','.join(self.versions)}"]
        for i, cell in enumerate(self.cells):
            last = i == len(self.cells) - 1
            lines.append(f"{'└──' if last else '├──'} {cell.id}  (cell seed {cell.seed})")
            pad = "    " if last else "│   "
            for j, step in enumerate(cell.steps):
                branch = "└──" if j == len(cell.steps) - 1 else "├──"
                lines.append(f"{pad}{branch} {step.describe()}")
        return "\n".join(lines)

    def select(self, cell_ids: list[str]) -> Plan:
        wanted = set(cell_ids)
        return Plan(self.seed, self.versions, self.members, [c for c in self.cells if c.id in wanted])


# ------------------------------------------------------------------ version model

class Model:
    """What the cluster should look like, according to the project's version rules."""

    def __init__(self, flavour: str, versions: dict[str, str]) -> None:
        self.flavour = flavour
        self.members: dict[str, str] = dict(versions)  # name -> spec
        self.semver: dict[str, str] = {}
        self.down: set[str] = set()
        self.downgrade_enabled = False
        self.downgrade_target = ""
        self.downgrade_unknown = False  # after a request whose outcome the policy leaves open
        self.cluster_minor = self._min_minor()

    def minor_of(self, spec: str) -> tuple[int, int]:
        if spec not in self.semver:
            self.semver[spec] = declared_version(VersionSpec.parse(spec))
        return major_minor(self.semver[spec])

    def _min_minor(self) -> tuple[int, int]:
        return min(self.minor_of(s) for s in self.members.values())

    def settle(self) -> None:
        if self.downgrade_enabled:
            target = major_minor(self.downgrade_target + ".0")
            if all(self.minor_of(s) == target for s in self.members.values()):
                self.downgrade_enabled = False  # completes by itself once every member runs the target
                self.downgrade_target = ""
            self.cluster_minor = target
        else:
            lowest = self._min_minor()
            # the leader raises the cluster version only when it can read every member's version
            if not (self.down and lowest > self.cluster_minor):
                self.cluster_minor = lowest

    def has_api(self) -> bool:
        return any(policy.has_downgrade_api(self.flavour, self.minor_of(s)) for s in self.members.values())

    def snapshot(self) -> dict[str, Any]:
        return {
            "members": dict(sorted(self.members.items())),
            "down": sorted(self.down),
            # after a request whose outcome the plan leaves open, the cluster version is unknown too
            "cluster_version": None if self.downgrade_unknown else "{}.{}".format(*self.cluster_minor),
            "downgrade": ({"enabled": self.downgrade_enabled, "target": self.downgrade_target}
                          if self.has_api() and not self.downgrade_unknown else None),
        }


class CellBuilder:
    def __init__(self, cell: Cell, flavour: str) -> None:
        self.cell = cell
        self.model: Model | None = None
        self.flavour = flavour

    def step(self, _action: str, xfail: str | None = None, **args: Any) -> None:
        action = _action
        assert self.model is not None or action == "start-cluster"
        if action == "start-cluster":
            self.model = Model(self.flavour, args["members"])
        m = self.model
        assert m is not None
        if action == "replace":
            new_minor = m.minor_of(args["version"])
            xfail = xfail or policy.unsupported_replace(self.flavour, m.cluster_minor, new_minor,
                                                        m.downgrade_enabled)
            m.members[args["member"]] = args["version"]
            m.down.discard(args["member"])
        elif action == "downgrade":
            act = args["action"]
            if args.get("any_reply"):
                m.downgrade_unknown = True
            elif args.get("expect_error"):
                pass
            elif act == "enable":
                m.downgrade_enabled, m.downgrade_target = True, args["target"]
            elif act == "cancel":
                m.downgrade_enabled, m.downgrade_target = False, ""
        elif action == "add-member":
            m.members[args["member"]] = args["version"]
        elif action == "remove-member":
            m.members.pop(args["member"])
            m.down.discard(args["member"])
        elif action == "stop-member":
            m.down.add(args["member"])
        elif action == "start-member":
            m.down.discard(args["member"])
        m.settle()
        self.cell.steps.append(Step(len(self.cell.steps) + 1, action, args, m.snapshot(), xfail))


def _names(n: int) -> list[str]:
    return [f"m{i}" for i in range(n)]


def _order(names: list[str], leader: str, variant: str, rng: random.Random) -> list[str]:
    others = [x for x in names if x != leader]
    if variant == "leader-first":
        return [leader, *others]
    if variant == "leader-last":
        return [*others, leader]
    out = list(names)
    rng.shuffle(out)
    return out


def _build(kind: str, variant: str, versions: list[str], n: int, rng: random.Random,
           flavour: str) -> tuple[list[Step], dict[str, Any]]:
    cell = Cell("", kind, variant, versions, 0, n)
    b = CellBuilder(cell, flavour)
    names = _names(n)
    opts: dict[str, Any] = {}
    old, new = versions[0], versions[-1]
    leader = rng.choice(names)
    if kind == "upgrade-rolling":
        b.step("start-cluster", members=dict.fromkeys(names, old))
        b.step("move-leader", to=leader)
        for name in _order(names, leader, variant, rng):
            b.step("replace", member=name, version=new)
    elif kind == "upgrade-chain":
        b.step("start-cluster", members=dict.fromkeys(names, versions[0]))
        for ver in versions[1:]:
            b.step("move-leader", to=rng.choice(names))
            for name in _order(names, leader, variant, rng):
                b.step("replace", member=name, version=ver)
    elif kind in ("downgrade-rolling", "downgrade-then-upgrade"):
        target = "{}.{}".format(*major_minor(declared_version(VersionSpec.parse(old))))
        b.step("start-cluster", members=dict.fromkeys(names, new))
        b.step("move-leader", to=leader)
        b.step("downgrade", action="validate", target=target)
        b.step("downgrade", action="enable", target=target)
        order = _order(names, leader, variant if variant != "random" else "random", rng)
        for name in order:
            b.step("replace", member=name, version=old)
        b.step("wait-downgrade-complete")
        if kind == "downgrade-then-upgrade":
            for name in _order(names, leader, "random", rng):
                b.step("replace", member=name, version=new)
    elif kind == "downgrade-partial-cancel":
        target = "{}.{}".format(*major_minor(declared_version(VersionSpec.parse(old))))
        b.step("start-cluster", members=dict.fromkeys(names, new))
        b.step("downgrade", action="enable", target=target)
        victim = rng.choice(names)
        b.step("replace", member=victim, version=old)
        b.step("downgrade", action="cancel")
        b.step("replace", member=victim, version=new)
    elif kind == "downgrade-cancel":
        target = "{}.{}".format(*major_minor(declared_version(VersionSpec.parse(old))))
        b.step("start-cluster", members=dict.fromkeys(names, new))
        idle_cancel = policy.cancel_without_downgrade_error(flavour)
        if variant == "before-enable":
            b.step("downgrade", action="cancel", expect_error=idle_cancel)
            b.step("downgrade", action="validate", target=target)
            b.step("downgrade", action="cancel", expect_error=idle_cancel)
        elif variant == "after-enable":
            b.step("downgrade", action="enable", target=target)
            b.step("downgrade", action="cancel")
            b.step("downgrade", action="cancel", expect_error=idle_cancel)
        else:  # a member that went down while the downgrade was enabled comes back after CANCEL
            victim = rng.choice(names)
            b.step("downgrade", action="enable", target=target)
            b.step("stop-member", member=victim)
            b.step("downgrade", action="cancel")
            b.step("start-member", member=victim)
    elif kind == "downgrade-api-mixed":
        # mid-upgrade (cluster still on the old minor) a client sends Downgrade to a new-version member:
        # accepting or refusing is fine, crashing a member is not
        mo = major_minor(declared_version(VersionSpec.parse(old)))
        target = f"{mo[0]}.{max(mo[1] - 1, 0)}"
        news = rng.sample(names, max(1, n // 2))
        b.step("start-cluster", members={x: (new if x in news else old) for x in names})
        b.step("move-leader", to=rng.choice([x for x in names if x not in news]))
        b.step("downgrade", action="validate", target=target, via=news[0], any_reply=True)
        b.step("downgrade", action="enable", target=target, via=news[0], any_reply=True)
        b.step("steady", seconds=3)
        if variant == "enable-then-recover":
            # what an operator would try next; run even after a fatal failure ("recovery" steps)
            olds = [x for x in names if x not in news]
            for x in olds:
                b.step("restart", member=x, signal="SIGTERM", recovery=True)
            for x in olds:
                b.step("replace", member=x, version=new, recovery=True)
            b.step("downgrade", action="cancel", via=news[0], any_reply=True, recovery=True)
    elif kind == "downgrade-api-errors":
        # the documented error replies of the Downgrade API (codes clients match on)
        mo = major_minor(declared_version(VersionSpec.parse(old)))
        mn = major_minor(declared_version(VersionSpec.parse(new)))
        target = f"{mo[0]}.{mo[1]}"
        b.step("start-cluster", members=dict.fromkeys(names, new))
        b.step("downgrade", action="validate", target="not-a-version", raw=True, expect_error="INVALID_ARGUMENT")
        b.step("downgrade", action="validate", target=f"{mn[0]}.{mn[1] + 1}", expect_error="INVALID_ARGUMENT")
        b.step("downgrade", action="validate", target=f"{mn[0]}.{mn[1]}", expect_error="INVALID_ARGUMENT")
        if mo[1] > 0:
            b.step("downgrade", action="validate", target=f"{mo[0]}.{mo[1] - 1}", expect_error="INVALID_ARGUMENT")
        b.step("downgrade", action="validate", target=target)
        b.step("downgrade", action="enable", target=target)
        b.step("downgrade", action="enable", target=target, expect_error="FAILED_PRECONDITION")
        b.step("downgrade", action="validate", target=target, expect_error="FAILED_PRECONDITION")
        b.step("downgrade", action="cancel")
    elif kind == "downgrade-binary-only":
        b.step("start-cluster", members=dict.fromkeys(names, new))
        b.step("replace", member=rng.choice(names), version=old)
    elif kind == "mixed-steady":
        side, lead = variant.split("/")
        n_old = n // 2 if side == "minority-old" else n // 2 + 1
        shuffled = list(names)
        rng.shuffle(shuffled)
        olds = set(shuffled[:n_old])
        b.step("start-cluster", members={x: (old if x in olds else new) for x in names})
        pool = sorted(olds) if lead == "leader-old" else sorted(set(names) - olds)
        b.step("move-leader", to=rng.choice(pool))
        b.step("steady", seconds=4)
    elif kind == "restart-mid-upgrade":
        b.step("start-cluster", members=dict.fromkeys(names, old))
        order = _order(names, leader, "random", rng)
        for i, name in enumerate(order):
            b.step("replace", member=name, version=new)
            if i == 0:
                b.step("restart", member=rng.choice(names), signal=variant.upper())
    elif kind == "restart-mid-downgrade":
        target = "{}.{}".format(*major_minor(declared_version(VersionSpec.parse(old))))
        b.step("start-cluster", members=dict.fromkeys(names, new))
        b.step("downgrade", action="enable", target=target)
        b.step("restart", member=rng.choice(names), signal=variant.upper())
        b.step("downgrade", action="cancel")
    elif kind == "membership-mid-upgrade":
        b.step("start-cluster", members=dict.fromkeys(names, old))
        order = _order(names, leader, "random", rng)
        b.step("replace", member=order[0], version=new)
        if variant == "add":
            b.step("add-member", member=f"m{n}", version=new)
            for name in order[1:]:
                b.step("replace", member=name, version=new)
            b.step("remove-member", member=f"m{n}")
        else:
            b.step("remove-member", member=order[-1])
            for name in order[1:-1]:
                b.step("replace", member=name, version=new)
            b.step("add-member", member=f"m{n}", version=new)
    elif kind == "snapshot-catchup":
        opts["snapshot_count"] = 1000
        b.step("start-cluster", members=dict.fromkeys(names, old))
        lagger = rng.choice(names)
        b.step("move-leader", to=rng.choice([x for x in names if x != lagger]))
        b.step("stop-member", member=lagger)
        b.step("write-burst", count=5500)
        b.step("replace", member=lagger, version=new)
        for name in [x for x in names if x != lagger]:
            b.step("replace", member=name, version=new)
    elif kind == "clients":
        b.step("start-cluster", members={"m0": versions[0]})
        b.step("clients")
    else:
        raise ValueError(f"unknown scenario kind {kind!r}")
    return cell.steps, opts


def _flavour_of(versions: list[str]) -> str:
    flavours = {VersionSpec.parse(v).flavour for v in versions}
    return "kvetch" if "kvetch" in flavours else "etcd"


def kind_allowed(kind: str, old: str, new: str) -> bool:
    fl = VersionSpec.parse(new).flavour
    mo = major_minor(declared_version(VersionSpec.parse(old)))
    mn = major_minor(declared_version(VersionSpec.parse(new)))
    if VersionSpec.parse(old).flavour != fl:
        # kvetch and etcd members do not share a peer protocol or a data-dir format: no mixed cells
        return False
    if kind == "downgrade-api-mixed":
        return mn[0] == mo[0] and mn[1] - mo[1] == 1 and policy.has_downgrade_api(fl, mn)
    if (kind.startswith("downgrade") or kind == "restart-mid-downgrade") and kind != "downgrade-binary-only":
        return mn[0] == mo[0] and mn[1] - mo[1] == 1 and policy.has_downgrade_api(fl, mn)
    if kind == "downgrade-binary-only":
        return mn != mo or mn[1] - mo[1] <= 1
    return True


def parse_scenarios(text: str | None) -> list[tuple[str, str | None]]:
    if not text:
        return [(k, None) for k in KINDS]
    out: list[tuple[str, str | None]] = []
    for item in text.split(","):
        kind, _, variant = item.strip().partition(":")
        if kind not in KINDS:
            raise ValueError(f"unknown scenario {kind!r}; known: {', '.join(KINDS)}")
        if variant and variant != "all" and variant not in KINDS[kind]:
            raise ValueError(f"unknown variant {variant!r} of {kind}; known: {', '.join(KINDS[kind])}")
        out.append((kind, variant or None))
    return out


def generate(versions: list[str], seed: int, members: int = 3, scenarios: str | None = None) -> Plan:
    """Build the plan: for each requested kind, one cell per adjacent version pair (variant from the seed)."""
    if members not in (1, 3, 5):
        raise ValueError("members must be 1, 3 or 5")
    for v in versions:
        VersionSpec.parse(v)
    cells: list[Cell] = []
    pairs = list(itertools.pairwise(versions))
    for kind, want_variant in parse_scenarios(scenarios):
        if kind == "clients":
            groups = [[v] for v in versions]
        elif kind == "upgrade-chain":
            same = len({VersionSpec.parse(v).flavour for v in versions}) == 1
            groups = [versions] if len(versions) > 2 and same else []
        else:
            groups = [[a, b] for a, b in pairs if kind_allowed(kind, a, b)]
        for group in groups:
            # per-cell randomness derives from (seed, kind, versions) only, so that selecting a subset
            # of scenarios with the same seed reproduces exactly the same cells
            crng = random.Random(f"{seed}/{kind}/{'->'.join(group)}")
            variants = KINDS[kind] if want_variant == "all" else [want_variant or crng.choice(KINDS[kind])]
            for variant in variants:
                cell_seed = random.Random(f"{seed}/{kind}[{variant}]/{'->'.join(group)}").randrange(2**31)
                n = 1 if kind == "clients" else members
                steps, opts = _build(kind, variant, group, n, random.Random(cell_seed), _flavour_of(group))
                cid = f"{kind}[{variant}] {'->'.join(group)}"
                cells.append(Cell(cid, kind, variant, group, cell_seed, n, steps, opts))
    return Plan(seed, list(versions), members, cells)
