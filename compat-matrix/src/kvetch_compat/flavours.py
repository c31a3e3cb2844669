"""Flavour adapters: how to start, stop and interrogate one member of a given server flavour.

An adapter knows its flag names (including etcd's experimental-flag renames),
which version endpoints it serves and how it exposes downgrade state.  The
kvetch adapter is written against the contract in the issue: kvetch accepts
etcd's member flags and serves /version, /health and the etcd gRPC API.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import requests

from .versions import Resolved


@dataclass
class MemberConfig:
    name: str
    data_dir: str
    client_url: str
    peer_url: str
    initial_cluster: str
    state: str  # "new" | "existing"
    token: str
    snapshot_count: int | None = None


@dataclass
class DowngradeState:
    enabled: bool
    target: str = ""
    source: str = ""  # where it was read from


#: Logical option -> flag name, per (flavour, minor). None: the version lacks it.
FLAG_RENAMES: dict[str, dict[tuple[int, int], str | None]] = {
    "downgrade-check-time": {(3, 4): None, (3, 5): "--experimental-downgrade-check-time",
                             (3, 6): "--downgrade-check-time"},
    "snapshot-catchup-entries": {(3, 4): None, (3, 5): None, (3, 6): "--snapshot-catchup-entries"},
    "initial-corrupt-check": {(3, 4): "--experimental-initial-corrupt-check",
                              (3, 5): "--experimental-initial-corrupt-check", (3, 6): "--initial-corrupt-check"},
}


class Flavour:
    """Base adapter; one instance per resolved version."""

    kind = "base"

    def __init__(self, resolved: Resolved) -> None:
        self.resolved = resolved

    @property
    def version(self) -> str:
        return self.resolved.version

    @property
    def minor(self) -> tuple[int, int]:
        return self.resolved.minor

    def flag(self, logical: str) -> str | None:
        table = FLAG_RENAMES.get(logical, {})
        if self.minor in table:
            return table[self.minor]
        known = sorted(k for k in table if k <= self.minor)
        return table[known[-1]] if known else None

    def argv(self, m: MemberConfig) -> list[str]:
        args = [
            *self.resolved.server_argv,
            "--name", m.name, "--data-dir", m.data_dir,
            "--listen-client-urls", m.client_url, "--advertise-client-urls", m.client_url,
            "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
            "--initial-cluster", m.initial_cluster, "--initial-cluster-state", m.state,
            "--initial-cluster-token", m.token,
        ]
        return args + self.extra_args(m)

    def extra_args(self, m: MemberConfig) -> list[str]:
        return []

    @property
    def supports_downgrade_api(self) -> bool:
        return True

    # --- reading state
    def http_version(self, client_url: str) -> dict[str, str]:
        r = requests.get(client_url + "/version", timeout=3)
        r.raise_for_status()
        return r.json()

    def health(self, client_url: str) -> tuple[bool, str]:
        try:
            r = requests.get(client_url + "/health", timeout=5)
            body = r.text.strip()
            ok = r.status_code == 200 and json.loads(body).get("health") in ("true", True)
            return ok, body
        except (requests.RequestException, ValueError) as exc:
            return False, str(exc)

    def metrics_versions(self, client_url: str) -> dict[str, str]:
        """Server and cluster version from Prometheus metrics (etcd's metric names)."""
        out: dict[str, str] = {}
        try:
            text = requests.get(client_url + "/metrics", timeout=5).text
        except requests.RequestException:
            return out
        for line in text.splitlines():
            m = re.match(r'etcd_server_version\{server_version="([^"]+)"\}\s+1', line)
            if m:
                out["server"] = m.group(1)
            m = re.match(r'etcd_cluster_version\{cluster_version="([^"]+)"\}\s+1', line)
            if m:
                out["cluster"] = m.group(1)
        return out

    def downgrade_state(self, client_url: str, peer_url: str, status_info: object | None) -> DowngradeState | None:
        """Downgrade state as this flavour exposes it; None when it has no such concept."""
        if status_info is not None and (getattr(status_info, "targetVersion", "") or getattr(status_info, "enabled", False)):
            return DowngradeState(bool(status_info.enabled), status_info.targetVersion, "Status.downgradeInfo")
        if status_info is not None:
            return DowngradeState(False, "", "Status.downgradeInfo")
        return None


class EtcdFlavour(Flavour):
    kind = "etcd"

    def extra_args(self, m: MemberConfig) -> list[str]:
        args: list[str] = []
        if self.minor == (3, 4):
            args += ["--logger", "zap", "--log-outputs", "stderr"]
        dct = self.flag("downgrade-check-time")
        if dct:
            args += [dct, "1s"]
        if m.snapshot_count:
            args += ["--snapshot-count", str(m.snapshot_count)]
        return args

    @property
    def supports_downgrade_api(self) -> bool:
        return self.minor >= (3, 5)

    def downgrade_state(self, client_url: str, peer_url: str, status_info: object | None) -> DowngradeState | None:
        if self.minor < (3, 5):
            return None
        if self.minor >= (3, 6):
            return super().downgrade_state(client_url, peer_url, status_info)
        # etcd 3.5 exposes it only on the peer listener: GET /downgrade/enabled -> "true"/"false".
        try:
            r = requests.get(peer_url + "/downgrade/enabled", timeout=5)
            r.raise_for_status()
            return DowngradeState(r.text.strip() == "true", "", "peer /downgrade/enabled")
        except requests.RequestException:
            return None


class KvetchFlavour(Flavour):
    """kvetch: etcd's member flags, /version, /health, gRPC with Status.downgradeInfo."""

    kind = "kvetch"

    def extra_args(self, m: MemberConfig) -> list[str]:
        args: list[str] = []  # only the contract's flags, plus what a scenario needs
        if m.snapshot_count:
            args += ["--snapshot-count", str(m.snapshot_count)]
        return args

    def downgrade_state(self, client_url: str, peer_url: str, status_info: object | None) -> DowngradeState | None:
        st = super().downgrade_state(client_url, peer_url, status_info)
        if st is not None:
            return st
        return DowngradeState(False, "", "Status.downgradeInfo (absent)")


def flavour_for(resolved: Resolved) -> Flavour:
    return EtcdFlavour(resolved) if resolved.spec.flavour == "etcd" else KvetchFlavour(resolved)
