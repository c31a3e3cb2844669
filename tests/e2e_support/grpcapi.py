"""Thin access to the etcd v3 gRPC API through kvetch's generated stubs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from kvetch.api.etcdserverpb import rpc_pb2 as pb
from kvetch.api.etcdserverpb import rpc_pb2_grpc as pbg

__all__ = ["Stubs", "pb", "pbg", "stubs"]


@dataclass
class Stubs:
    kv: pbg.KVStub
    watch: pbg.WatchStub
    lease: pbg.LeaseStub
    cluster: pbg.ClusterStub
    maintenance: pbg.MaintenanceStub


def stubs(channel: grpc.Channel) -> Stubs:
    return Stubs(
        kv=pbg.KVStub(channel),
        watch=pbg.WatchStub(channel),
        lease=pbg.LeaseStub(channel),
        cluster=pbg.ClusterStub(channel),
        maintenance=pbg.MaintenanceStub(channel),
    )


def rpc_error(call: Any) -> tuple[str, str] | None:
    """Run ``call()``; return (status code name, details) if it raises RpcError."""
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code().name, exc.details()
    return None
