"""Typed client errors: gRPC statuses from an etcd-compatible server, mapped to exceptions.

Each exception keeps the gRPC status code and the server's exact message
(``etcdserver: ...``), so callers can both catch by type and print what etcd
would print.
"""

from __future__ import annotations

import grpc


class EtcdError(Exception):
    """Base of every error raised by :mod:`kvetch.client`."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        #: the final server response when there is one (a cancelled watch's last WatchResponse)
        self.response: object | None = None

    def __str__(self) -> str:
        return self.message


class ClientClosedError(EtcdError):
    """The client was closed."""


class NoEndpointsError(EtcdError):
    """No endpoint could be reached."""


class UnavailableError(EtcdError):
    """UNAVAILABLE: the endpoint is down, has no leader, or timed out internally."""


class DeadlineExceededError(EtcdError):
    """The request did not finish within its timeout."""


class CancelledError(EtcdError):
    """The request was cancelled."""


class InvalidArgumentError(EtcdError):
    """INVALID_ARGUMENT."""


class FailedPreconditionError(EtcdError):
    """FAILED_PRECONDITION."""


class NotFoundError(EtcdError):
    """NOT_FOUND."""


class OutOfRangeError(EtcdError):
    """OUT_OF_RANGE."""


class PermissionDeniedError(EtcdError):
    """PERMISSION_DENIED."""


class UnauthenticatedError(EtcdError):
    """UNAUTHENTICATED (for example an expired auth token)."""


class ResourceExhaustedError(EtcdError):
    """RESOURCE_EXHAUSTED (quota exceeded, too many requests)."""


class DataLossError(EtcdError):
    """DATA_LOSS (corrupt cluster)."""


class CompactedError(OutOfRangeError):
    """The requested revision has been compacted.

    ``compact_revision`` is known for watches (the server tells it), None for ranges.
    """

    def __init__(
        self,
        message: str = "etcdserver: mvcc: required revision has been compacted",
        code: grpc.StatusCode | None = grpc.StatusCode.OUT_OF_RANGE,
        compact_revision: int | None = None,
    ) -> None:
        super().__init__(message, code)
        self.compact_revision = compact_revision


class FutureRevisionError(OutOfRangeError):
    """The requested revision is newer than the store's current revision."""


class LeaseNotFoundError(NotFoundError):
    """The lease does not exist (never granted, revoked or expired)."""


class LeaseExpiredError(LeaseNotFoundError):
    """A keep-alive found the lease gone (TTL <= 0)."""


class KeyNotFoundError(InvalidArgumentError):
    """``etcdserver: key not found`` (put with ignore_value/ignore_lease on a missing key)."""


class MemberNotFoundError(NotFoundError):
    """The member ID does not exist."""


class AuthFailedError(InvalidArgumentError):
    """Wrong user name or password."""


class NoLeaderError(UnavailableError):
    """The cluster has no leader."""


class WatchCanceledError(EtcdError):
    """The server cancelled a watch (other than for compaction)."""


_BY_MESSAGE: dict[str, type[EtcdError]] = {
    "etcdserver: mvcc: required revision has been compacted": CompactedError,
    "etcdserver: mvcc: required revision is a future revision": FutureRevisionError,
    "etcdserver: requested lease not found": LeaseNotFoundError,
    "etcdserver: key not found": KeyNotFoundError,
    "etcdserver: member not found": MemberNotFoundError,
    "etcdserver: authentication failed, invalid user ID or password": AuthFailedError,
    "etcdserver: no leader": NoLeaderError,
}

_BY_CODE: dict[grpc.StatusCode, type[EtcdError]] = {
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.CANCELLED: CancelledError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRangeError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.DATA_LOSS: DataLossError,
}


def from_status(code: grpc.StatusCode, message: str) -> EtcdError:
    """Build the typed exception for a gRPC status and message."""
    cls = _BY_MESSAGE.get(message) or _BY_CODE.get(code, EtcdError)
    if cls is CompactedError:
        return CompactedError(message, code)
    return cls(message, code)


def from_rpc_error(err: grpc.RpcError) -> EtcdError:
    """Translate a grpc(.aio) RpcError."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        details = details if details and details.startswith("etcdserver") else "context deadline exceeded"
    return from_status(code, details or "")
