"""Watch API: multiplexing, options, compaction error, and resume across a server restart."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from kvetch.api.mvccpb import kv_pb2
from kvetch.client import Client, errors
from kvetch.client.watch import Watch

PUT, DELETE = kv_pb2.Event.PUT, kv_pb2.Event.DELETE


async def collect(w: Watch, n: int, timeout: float = 10.0) -> list[kv_pb2.Event]:
    out: list[kv_pb2.Event] = []

    async def go() -> None:
        async for ev in w.events():
            out.append(ev)
            if len(out) >= n:
                return

    await asyncio.wait_for(go(), timeout)
    return out


def test_many_watches_one_stream(server) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with Client([server.endpoint], timeout=5) as c:
            w_key = await c.watch("a")
            w_pfx = await c.watch("p/", prefix=True, prev_kv=True)
            w_noput = await c.watch("p/", prefix=True, filters=["noput"])
            w_nodel = await c.watch("p/", prefix=True, filters=["nodelete"])
            assert len({w_key.watch_id, w_pfx.watch_id, w_noput.watch_id, w_nodel.watch_id}) == 4
            await c.put("a", "1")
            await c.put("p/1", "x")
            await c.put("p/1", "y")
            await c.delete("p/1")
            ev = await collect(w_key, 1)
            assert ev[0].kv.key == b"a" and ev[0].kv.value == b"1"
            evs = await collect(w_pfx, 3)
            assert [e.type for e in evs] == [PUT, PUT, DELETE]
            assert evs[1].prev_kv.value == b"x" and evs[2].prev_kv.value == b"y"
            assert [e.type for e in await collect(w_noput, 1)] == [DELETE]
            assert [e.kv.value for e in await collect(w_nodel, 2)] == [b"x", b"y"]
            await w_key.cancel()
            assert w_key.closed

    asyncio.run(main())


def test_start_revision_and_progress(server) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with Client([server.endpoint], timeout=5) as c:
            first = (await c.put("h", "1")).header.revision
            await c.put("h", "2")
            w = await c.watch("h", start_revision=first)
            assert [e.kv.value for e in await collect(w, 2)] == [b"1", b"2"]
            await c.watcher.request_progress()

            async def progress() -> int:
                async for resp in w:
                    if resp.is_progress_notify:
                        return resp.header.revision
                return -1

            assert await asyncio.wait_for(progress(), 10) >= first + 1

    asyncio.run(main())


def test_watch_compacted_raises_typed_error(server) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with Client([server.endpoint], timeout=5) as c:
            first = (await c.put("k", "0")).header.revision
            for i in range(3):
                last = (await c.put("k", str(i))).header.revision
            await c.compact(last)
            w = await c.watch("k", start_revision=first)
            with pytest.raises(errors.CompactedError) as ei:
                await collect(w, 1)
            assert ei.value.compact_revision == last

    asyncio.run(main())


def test_fragmented_events_are_merged(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    srv = cluster_factory(1, extra=["--max-request-bytes", "2048"]).members[0]

    async def main() -> None:
        async with Client([srv.endpoint], timeout=5) as c:
            for i in range(8):
                await c.put(f"f/{i}", "v" * 900)
            w = await c.watch("f/", prefix=True, prev_kv=True, fragment=True)
            await c.delete("f/", prefix=True)

            async def one() -> int:
                async for resp in w:
                    if resp.events:
                        return len(resp.events)
                return 0

            assert await asyncio.wait_for(one(), 10) == 8

    asyncio.run(main())


def test_watch_resumes_after_server_restart(server) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with Client([server.endpoint], timeout=5) as c:
            w = await c.watch("r/", prefix=True)
            await c.put("r/1", "a")
            got = await collect(w, 1)
            server.stop()
            server.start()
            # writes made while the watcher is reconnecting must not be lost
            await asyncio.get_running_loop().run_in_executor(None, server.wait_ready)
            async with Client([server.endpoint], timeout=5) as writer:
                await writer.put("r/2", "b")
                await writer.put("r/3", "c")
            got += await collect(w, 2, timeout=30)
            assert [e.kv.key for e in got] == [b"r/1", b"r/2", b"r/3"]
            revs = [e.kv.mod_revision for e in got]
            assert revs == sorted(set(revs))

    asyncio.run(main())


class CuttableProxy:
    """A TCP proxy in front of the server whose connections can be cut and refused at will."""

    def __init__(self, target: str) -> None:
        self.host, port = target.rsplit(":", 1)
        self.target_port = int(port)
        self.refusing = False
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _conn(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        if self.refusing:
            w.close()
            return
        try:
            ur, uw = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            w.close()
            return
        self.writers += [w, uw]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(pipe(r, uw), pipe(ur, w))

    def cut(self) -> None:
        self.refusing = True
        for w in self.writers:
            w.close()
        self.writers.clear()

    def restore(self) -> None:
        self.refusing = False

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()


def test_watch_resumes_from_last_revision_after_disconnect(server) -> None:  # type: ignore[no-untyped-def]
    """Events written while the watcher is cut off arrive exactly once after it reconnects."""

    async def main() -> None:
        proxy = CuttableProxy(server.endpoint)
        ep = await proxy.start()
        async with Client([ep], timeout=5, dial_timeout=1) as c, Client([server.endpoint], timeout=5) as direct:
            w = await c.watch("d/", prefix=True)
            await direct.put("d/1", "a")
            got = await collect(w, 1)
            proxy.cut()
            await direct.put("d/2", "b")
            await direct.put("d/1", "c")
            await direct.delete("d/2")
            await asyncio.sleep(0.5)  # let the watcher notice and fail to reconnect at least once
            assert c.watcher.endpoint == ""
            proxy.restore()
            got += await collect(w, 3, timeout=30)
            assert [(e.type, e.kv.key, e.kv.value) for e in got] == [
                (PUT, b"d/1", b"a"), (PUT, b"d/2", b"b"), (PUT, b"d/1", b"c"), (DELETE, b"d/2", b""),
            ]
            await direct.put("d/3", "x")
            assert [e.kv.key for e in await collect(w, 1)] == [b"d/3"]
        await proxy.close()

    asyncio.run(main())
