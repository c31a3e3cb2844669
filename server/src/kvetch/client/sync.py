"""A thin synchronous facade: the asyncio client driven from a private event-loop thread.

``SyncClient`` mirrors :class:`~kvetch.client.client.Client`: every coroutine
method becomes a blocking call, every async iterator a plain iterator, and
helper objects (txn builders, watches) are wrapped the same way.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from .client import Client


class _Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="kvetch-client", daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


class _Proxy:
    """Wraps an object living on the loop thread."""

    def __init__(self, obj: Any, loop: _Loop) -> None:
        self._obj = obj
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._obj, name)
        if callable(attr):
            def call(*args: Any, **kw: Any) -> Any:
                async def run() -> Any:
                    return attr(*args, **kw)

                return _wrap(self._loop.run(run()), self._loop)

            return call
        return _wrap(attr, self._loop)

    def __iter__(self) -> Iterator[Any]:
        return _iterate(self._obj.__aiter__(), self._loop)


def _iterate(ait: AsyncIterator[Any], loop: _Loop) -> Iterator[Any]:
    while True:
        try:
            item = loop.run(ait.__anext__())
        except StopAsyncIteration:
            return
        yield _wrap(item, loop)


def _wrap(value: Any, loop: _Loop) -> Any:
    if inspect.isawaitable(value):
        return _wrap(loop.run(_await(value)), loop)
    if inspect.isasyncgen(value) or isinstance(value, AsyncIterator):
        return _iterate(value, loop)
    mod = type(value).__module__
    if mod.startswith("kvetch.client.") and not mod.endswith("errors"):
        return _Proxy(value, loop)
    return value


async def _await(aw: Any) -> Any:
    return await aw


class SyncClient(_Proxy):
    """Blocking client: ``with SyncClient(["127.0.0.1:2379"]) as c: c.put("k", "v")``."""

    def __init__(self, endpoints: list[str], **kw: Any) -> None:
        loop = _Loop()

        async def make() -> Client:
            return Client(endpoints, **kw)

        super().__init__(loop.run(make()), loop)

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._loop.run(self._obj.close())
        finally:
            self._loop.stop()
