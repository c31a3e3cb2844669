"""Versions and the Downgrade API on real kvetch processes: /version keys, the cluster version a
cluster decides, refusal to start on newer storage (data untouched), and every Downgrade error."""

from __future__ import annotations

import hashlib
import json
import subprocess
import urllib.request
from pathlib import Path

import grpc
import lmdb
import pytest
from e2e_support.cluster import start_cluster
from e2e_support.polling import wait_until
from e2e_support.server import ServerStartError
from kvetch.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from kvetch.version import CLUSTER_VERSION, __version__

pytestmark = pytest.mark.requires_flavour("kvetch")
DG = rpc_pb2.DowngradeRequest


def version_doc(endpoint: str) -> dict[str, str]:
    with urllib.request.urlopen(f"http://{endpoint}/version", timeout=5) as resp:
        return json.loads(resp.read())


def downgrade(m, action: int, version: str) -> rpc_pb2.DowngradeResponse:
    return rpc_pb2_grpc.MaintenanceStub(m.channel()).Downgrade(DG(action=action, version=version), timeout=10)


def files_digest(data_dir: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in data_dir.rglob("*") if p.is_file() and not p.name.endswith("-lock")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def test_cluster_decides_its_version(tmp_path: Path, flavour: str) -> None:
    members = start_cluster(flavour, 3, tmp_path)
    try:
        for m in members:
            wait_until(lambda m=m: version_doc(m.endpoint)["etcdcluster"] == CLUSTER_VERSION + ".0", timeout=30,
                       what="cluster version decision")
            doc = version_doc(m.endpoint)
            assert doc == {"etcdserver": __version__, "etcdcluster": CLUSTER_VERSION + ".0",
                           "storage": CLUSTER_VERSION + ".0"}
        with urllib.request.urlopen(f"http://{members[0].endpoint}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        assert f'etcd_cluster_version{{cluster_version="{CLUSTER_VERSION}"}} 1' in metrics
    finally:
        for m in members:
            m.stop()


def test_downgrade_error_paths(server_factory, flavour: str) -> None:
    srv = server_factory(flavour)
    major, minor = (int(x) for x in CLUSTER_VERSION.split("."))
    below = f"{major}.{minor - 1}"
    cases = [
        (DG.VALIDATE, "not-a-version", grpc.StatusCode.INVALID_ARGUMENT,
         "etcdserver: wrong downgrade target version format"),
        (DG.VALIDATE, CLUSTER_VERSION, grpc.StatusCode.INVALID_ARGUMENT,
         "etcdserver: invalid downgrade target version"),
        (DG.VALIDATE, f"{major}.{minor + 1}", grpc.StatusCode.INVALID_ARGUMENT,
         "etcdserver: invalid downgrade target version"),
        (DG.ENABLE, "x.y", grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: wrong downgrade target version format"),
    ]
    for action, version, code, message in cases:
        with pytest.raises(grpc.RpcError) as err:
            downgrade(srv, action, version)
        assert (err.value.code(), err.value.details()) == (code, message), (action, version)
    # cancel with nothing in progress is not an error
    assert downgrade(srv, DG.CANCEL, "").version == CLUSTER_VERSION + ".0"
    if minor == 0:
        return
    assert downgrade(srv, DG.VALIDATE, below).version == CLUSTER_VERSION + ".0"
    assert downgrade(srv, DG.VALIDATE, below + ".0").version == CLUSTER_VERSION + ".0"
    downgrade(srv, DG.ENABLE, below)
    status = rpc_pb2_grpc.MaintenanceStub(srv.channel()).Status(rpc_pb2.StatusRequest(), timeout=5)
    assert status.downgradeInfo.enabled and status.downgradeInfo.targetVersion == below + ".0"
    assert version_doc(srv.endpoint)["etcdcluster"] == below + ".0"
    with pytest.raises(grpc.RpcError) as err:
        downgrade(srv, DG.VALIDATE, below)
    assert err.value.details() == "etcdserver: cluster has a downgrade job in progress"
    downgrade(srv, DG.CANCEL, "")
    assert version_doc(srv.endpoint)["etcdcluster"] == CLUSTER_VERSION + ".0"


def test_refuses_newer_storage_and_leaves_files_untouched(server_factory, flavour: str) -> None:
    srv = server_factory(flavour)
    rpc_pb2_grpc.KVStub(srv.channel()).Put(rpc_pb2.PutRequest(key=b"k", value=b"v"), timeout=5)
    srv.stop()
    major, minor = (int(x) for x in CLUSTER_VERSION.split("."))
    newer = f"{major}.{minor + 1}"
    env = lmdb.open(str(srv.data_dir / "member" / "snap" / "db"), subdir=False, max_dbs=32, lock=False)
    with env.begin(write=True, db=env.open_db(b"meta")) as txn:
        txn.put(b"storageVersion", newer.encode())
        txn.put(b"kvetch_cluster_version", newer.encode())
    env.sync(True)
    env.close()
    before = files_digest(srv.data_dir)
    with pytest.raises(ServerStartError):
        srv.start(timeout=15)
    assert "server version is lower than determined cluster version" in srv.log_text()
    assert files_digest(srv.data_dir) == before
    # the same check from the command line, exit status non-zero
    out = subprocess.run(srv.argv(), capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode != 0
