"""Shared helpers of the end-to-end suite: servers, etcdctl, gRPC stubs, polling.

Importable as ``e2e_support`` because the root pytest config puts ``tests/`` on
``sys.path``.
"""

from e2e_support.binaries import etcd_binary, etcdctl_binary, etcdutl_binary
from e2e_support.flavours import FLAVOURS, flavours_from_env
from e2e_support.polling import wait_until
from e2e_support.ports import free_port
from e2e_support.server import Server, ServerStartError

__all__ = [
    "FLAVOURS",
    "Server",
    "ServerStartError",
    "etcd_binary",
    "etcdctl_binary",
    "etcdutl_binary",
    "flavours_from_env",
    "free_port",
    "wait_until",
]
