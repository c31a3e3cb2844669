"""User/password: the token is fetched lazily and attached to every call; typed auth errors."""

from __future__ import annotations

import asyncio

import pytest
from kvetch.client import Client, errors


def test_user_password(server) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with Client([server.endpoint], timeout=5) as admin:
            await admin.auth.role_add("root")
            await admin.auth.user_add("root", "secret")
            await admin.auth.user_grant_role("root", "root")
            await admin.put("k", "v")
            await admin.auth.enable()
            with pytest.raises(errors.InvalidArgumentError) as ei:
                await admin.get("k")
            assert ei.value.message == "etcdserver: user name is empty"
        async with Client([server.endpoint], timeout=5, user="root", password="wrong") as bad:
            with pytest.raises(errors.AuthFailedError) as ei2:
                await bad.maintenance.status()
            assert ei2.value.message == "etcdserver: authentication failed, invalid user ID or password"
        async with Client([server.endpoint], timeout=5, user="root", password="secret") as c:
            assert (await c.get("k")).kvs[0].value == b"v"
            w = await c.watch("k")
            await c.put("k", "w")

            async def first() -> bytes:
                async for ev in w.events():
                    return ev.kv.value
                return b""

            assert await asyncio.wait_for(first(), 20) == b"w"
            assert (await c.auth.status()).enabled
            await c.auth.disable()

    asyncio.run(main())
