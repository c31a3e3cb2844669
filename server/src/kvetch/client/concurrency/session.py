"""A session: one lease kept alive in the background for as long as the session lives."""

from __future__ import annotations

import contextlib

from ..client import Client
from ..errors import EtcdError
from ..lease import KeepAliveTask

DEFAULT_TTL = 60


class SessionExpiredError(EtcdError):
    """The session's lease is gone."""

    def __init__(self, message: str = "session expired") -> None:
        super().__init__(message)


class Session:
    """``session = await Session.create(client, ttl=10)``; ``await session.close()`` revokes the lease."""

    def __init__(self, client: Client, lease_id: int, ttl: int, keepalive: KeepAliveTask) -> None:
        self.client = client
        self.lease_id = lease_id
        self.ttl = ttl
        self._ka = keepalive

    @classmethod
    async def create(cls, client: Client, *, ttl: int = DEFAULT_TTL, lease_id: int = 0) -> Session:
        if lease_id == 0:
            lease_id = (await client.lease.grant(ttl)).ID
        return cls(client, lease_id, ttl, KeepAliveTask(client.lease, lease_id))

    @property
    def expired(self) -> bool:
        return self._ka.done.is_set()

    async def wait_done(self) -> None:
        """Return when the keep-alive ended (lease expired or revoked)."""
        await self._ka.done.wait()

    async def orphan(self) -> None:
        """Stop keeping the lease alive without revoking it."""
        await self._ka.stop()

    async def close(self) -> None:
        await self._ka.stop()
        with contextlib.suppress(EtcdError):
            await self.client.lease.revoke(self.lease_id, timeout=self.ttl)

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
