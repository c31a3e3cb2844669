"""Errors the server answers with: etcd's gRPC status codes and exact messages.

Everything below the RPC layer raises :class:`RPCError` (or one of the
prebuilt instances); the gRPC services turn it into a status, the JSON gateway
into etcd's gateway error body. The messages are protocol facts taken from
etcd's public API (clients match on them), so they must not be reworded.
"""

from __future__ import annotations

import grpc

Code = grpc.StatusCode


class RPCError(Exception):
    """A request failed with an etcd-compatible gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"RPCError({self.code.name}, {self.message!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RPCError) and (self.code, self.message) == (other.code, other.message)

    def __hash__(self) -> int:
        return hash((self.code, self.message))


def _e(code: grpc.StatusCode, message: str) -> RPCError:
    return RPCError(code, message)


# --- KV / MVCC -------------------------------------------------------------
EMPTY_KEY = _e(Code.INVALID_ARGUMENT, "etcdserver: key is not provided")
KEY_NOT_FOUND = _e(Code.INVALID_ARGUMENT, "etcdserver: key not found")
VALUE_PROVIDED = _e(Code.INVALID_ARGUMENT, "etcdserver: value is provided")
LEASE_PROVIDED = _e(Code.INVALID_ARGUMENT, "etcdserver: lease is provided")
TOO_MANY_OPS = _e(Code.INVALID_ARGUMENT, "etcdserver: too many operations in txn request")
DUPLICATE_KEY = _e(Code.INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request")
COMPACTED = _e(Code.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted")
FUTURE_REV = _e(Code.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision")
NO_SPACE = _e(Code.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded")

# --- leases ----------------------------------------------------------------
LEASE_NOT_FOUND = _e(Code.NOT_FOUND, "etcdserver: requested lease not found")
LEASE_EXIST = _e(Code.FAILED_PRECONDITION, "etcdserver: lease already exists")
LEASE_TTL_TOO_LARGE = _e(Code.OUT_OF_RANGE, "etcdserver: too large lease TTL")

# --- watch -----------------------------------------------------------------
WATCH_CANCELED = _e(Code.CANCELLED, "etcdserver: watch canceled")

# --- membership ------------------------------------------------------------
MEMBER_EXIST = _e(Code.FAILED_PRECONDITION, "etcdserver: member ID already exist")
PEER_URL_EXIST = _e(Code.FAILED_PRECONDITION, "etcdserver: Peer URLs already exists")
MEMBER_NOT_ENOUGH_STARTED = _e(
    Code.FAILED_PRECONDITION, "etcdserver: re-configuration failed due to not enough started members"
)
MEMBER_BAD_URLS = _e(Code.INVALID_ARGUMENT, "etcdserver: given member URLs are invalid")
MEMBER_NOT_FOUND = _e(Code.NOT_FOUND, "etcdserver: member not found")
MEMBER_NOT_LEARNER = _e(Code.FAILED_PRECONDITION, "etcdserver: can only promote a learner member")
LEARNER_NOT_READY = _e(
    Code.FAILED_PRECONDITION, "etcdserver: can only promote a learner member which is in sync with leader"
)
TOO_MANY_LEARNERS = _e(Code.FAILED_PRECONDITION, "etcdserver: too many learner members in cluster")

# --- requests --------------------------------------------------------------
INVALID_SORT_OPTION = _e(Code.INVALID_ARGUMENT, "etcdserver: invalid sort option")
REQUEST_TOO_LARGE = _e(Code.INVALID_ARGUMENT, "etcdserver: request is too large")
TOO_MANY_REQUESTS = _e(Code.RESOURCE_EXHAUSTED, "etcdserver: too many requests")

# --- auth ------------------------------------------------------------------
ROOT_USER_NOT_EXIST = _e(Code.FAILED_PRECONDITION, "etcdserver: root user does not exist")
ROOT_ROLE_NOT_EXIST = _e(Code.FAILED_PRECONDITION, "etcdserver: root user does not have root role")
USER_ALREADY_EXIST = _e(Code.FAILED_PRECONDITION, "etcdserver: user name already exists")
USER_EMPTY = _e(Code.INVALID_ARGUMENT, "etcdserver: user name is empty")
USER_NOT_FOUND = _e(Code.FAILED_PRECONDITION, "etcdserver: user name not found")
ROLE_ALREADY_EXIST = _e(Code.FAILED_PRECONDITION, "etcdserver: role name already exists")
ROLE_NOT_FOUND = _e(Code.FAILED_PRECONDITION, "etcdserver: role name not found")
ROLE_EMPTY = _e(Code.INVALID_ARGUMENT, "etcdserver: role name is empty")
AUTH_FAILED = _e(Code.INVALID_ARGUMENT, "etcdserver: authentication failed, invalid user ID or password")
PERMISSION_NOT_GIVEN = _e(Code.INVALID_ARGUMENT, "etcdserver: permission not given")
PERMISSION_DENIED = _e(Code.PERMISSION_DENIED, "etcdserver: permission denied")
ROLE_NOT_GRANTED = _e(Code.FAILED_PRECONDITION, "etcdserver: role is not granted to the user")
PERMISSION_NOT_GRANTED = _e(Code.FAILED_PRECONDITION, "etcdserver: permission is not granted to the role")
AUTH_NOT_ENABLED = _e(Code.FAILED_PRECONDITION, "etcdserver: authentication is not enabled")
INVALID_AUTH_TOKEN = _e(Code.UNAUTHENTICATED, "etcdserver: invalid auth token")
INVALID_AUTH_MGMT = _e(Code.INVALID_ARGUMENT, "etcdserver: invalid auth management")

# --- cluster state ---------------------------------------------------------
NO_LEADER = _e(Code.UNAVAILABLE, "etcdserver: no leader")
NOT_LEADER = _e(Code.FAILED_PRECONDITION, "etcdserver: not leader")
LEADER_CHANGED = _e(Code.UNAVAILABLE, "etcdserver: leader changed")
NOT_CAPABLE = _e(Code.UNAVAILABLE, "etcdserver: not capable")
STOPPED = _e(Code.UNAVAILABLE, "etcdserver: server stopped")
TIMEOUT = _e(Code.UNAVAILABLE, "etcdserver: request timed out")
TIMEOUT_DUE_TO_LEADER_FAIL = _e(
    Code.UNAVAILABLE, "etcdserver: request timed out, possibly due to previous leader failure"
)
TIMEOUT_DUE_TO_CONNECTION_LOST = _e(
    Code.UNAVAILABLE, "etcdserver: request timed out, possibly due to connection lost"
)
UNHEALTHY = _e(Code.UNAVAILABLE, "etcdserver: unhealthy cluster")
CORRUPT = _e(Code.DATA_LOSS, "etcdserver: corrupt cluster")
NOT_SUPPORTED_FOR_LEARNER = _e(Code.UNAVAILABLE, "etcdserver: rpc not supported for learner")
BAD_LEADER_TRANSFEREE = _e(Code.FAILED_PRECONDITION, "etcdserver: bad leader transferee")

# --- downgrade -------------------------------------------------------------
CLUSTER_VERSION_UNAVAILABLE = _e(Code.UNAVAILABLE, "etcdserver: cluster version not found during downgrade")
WRONG_DOWNGRADE_VERSION_FORMAT = _e(Code.INVALID_ARGUMENT, "etcdserver: wrong downgrade target version format")
INVALID_DOWNGRADE_TARGET_VERSION = _e(Code.INVALID_ARGUMENT, "etcdserver: invalid downgrade target version")
DOWNGRADE_IN_PROCESS = _e(Code.FAILED_PRECONDITION, "etcdserver: cluster has a downgrade job in progress")
NO_INFLIGHT_DOWNGRADE = _e(Code.FAILED_PRECONDITION, "etcdserver: no inflight downgrade job")

CANCELED = _e(Code.CANCELLED, "etcdserver: request canceled")
DEADLINE_EXCEEDED = _e(Code.DEADLINE_EXCEEDED, "etcdserver: context deadline exceeded")
