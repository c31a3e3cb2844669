"""Configuration: etcd flag names, KVETCH_* environment, YAML config file, etcd's precedence."""

from __future__ import annotations

from pathlib import Path

import pytest
from kvetch import config


def test_flags_env_and_defaults() -> None:
    cfg = config.load(["--name", "n1", "--max-txn-ops", "64", "--unsafe-no-fsync"],
                      environ={"KVETCH_MAX_TXN_OPS": "7", "KVETCH_QUOTA_BACKEND_BYTES": "1024"})
    assert cfg.name == "n1"
    assert cfg.max_txn_ops == 64  # flag beats environment
    assert cfg.quota_backend_bytes == 1024  # environment beats default
    assert cfg.unsafe_no_fsync is True
    assert cfg.max_request_bytes == int(1.5 * 1024 * 1024)
    assert cfg.resolved_data_dir() == "n1.kvetch"
    assert cfg.initial_cluster == "n1=http://127.0.0.1:2380"


def test_default_member_uses_default_kvetch_data_dir() -> None:
    cfg = config.load([], environ={})
    assert cfg.resolved_data_dir() == "default.kvetch"
    assert cfg.listen_client_urls == ["http://127.0.0.1:2379"]


def test_config_file_replaces_flags(tmp_path: Path) -> None:
    path = tmp_path / "kvetch.yaml"
    path.write_text("name: fromfile\nmax-txn-ops: 9\nlisten-client-urls: http://127.0.0.1:4000\n")
    cfg = config.load(["--config-file", str(path), "--name", "ignored"], environ={})
    assert cfg.name == "fromfile"
    assert cfg.max_txn_ops == 9
    assert cfg.listen_client_urls == ["http://127.0.0.1:4000"]


def test_etcd_only_flags_are_accepted() -> None:
    cfg = config.load(["--logger", "zap", "--enable-v2=false", "--experimental-warning-apply-duration", "250ms"],
                      environ={})
    assert cfg.experimental_warning_apply_duration == pytest.approx(0.25)


def test_election_timeout_must_be_five_heartbeats() -> None:
    with pytest.raises(SystemExit):
        config.load(["--heartbeat-interval", "300", "--election-timeout", "1000"], environ={})
