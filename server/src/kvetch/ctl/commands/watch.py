"""watch (including ``watch -i`` and ``-- exec-command``)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from kvetch.client import Client, Watch, WatchResponse, errors

from ..context import Ctx
from ..errors import EXIT_BAD_ARGS, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_INVALID_INPUT, CtlError
from ..gofmt import quote
from ..printers import EVENT_TYPES
from .kv import argify


def _watch_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("--prefix", action="store_true")
    p.add_argument("--rev", type=int, default=0)
    p.add_argument("--prev-kv", action="store_true")
    p.add_argument("--progress-notify", action="store_true")


async def _start(c: Client, a: argparse.Namespace, args: list[str]) -> Watch:
    if not args:
        raise CtlError("bad number of arguments", EXIT_BAD_ARGS)
    key = args[0].encode("utf-8", "surrogateescape")
    range_end = None
    if len(args) == 2:
        if a.prefix:
            raise CtlError("`range_end` and `--prefix` are mutually exclusive", EXIT_BAD_ARGS)
        range_end = args[1].encode("utf-8", "surrogateescape")
    return await c.watch(
        key, range_end, prefix=a.prefix, start_revision=a.rev, prev_kv=a.prev_kv,
        progress_notify=a.progress_notify,
    )


async def _run_exec(exec_args: list[str], resp: WatchResponse) -> None:
    for ev in resp.events:
        env = dict(os.environ)
        env["ETCD_WATCH_REVISION"] = str(resp.header.revision)
        env["ETCD_WATCH_EVENT_TYPE"] = quote(EVENT_TYPES.get(ev.type, str(ev.type)))
        env["ETCD_WATCH_KEY"] = quote(ev.kv.key)
        env["ETCD_WATCH_VALUE"] = quote(ev.kv.value)
        sys.stdout.flush()
        proc = await asyncio.create_subprocess_exec(*exec_args, env=env)
        rc = await proc.wait()
        if rc != 0:
            sys.stderr.write(f"command {exec_args!r} error (exit status {rc})\n")
            sys.exit(1)


async def _print(ctx: Ctx, w: Watch, exec_args: list[str]) -> None:
    try:
        async for resp in w:
            if resp.created:
                continue  # clientv3 does not hand the creation notice to etcdctl
            if resp.is_progress_notify:
                sys.stdout.write(f"progress notify: {resp.header.revision}\n")
            ctx.printer.watch(resp)
            sys.stdout.flush()
            if exec_args:
                await _run_exec(exec_args, resp)
    except (errors.CompactedError, errors.WatchCanceledError) as e:
        sys.stderr.write(f"watch was canceled ({e.message})\n")
        final = getattr(e, "response", None)
        if final is not None:
            ctx.printer.watch(final)
        sys.stdout.flush()


def _split_exec(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


async def cmd_watch(ctx: Ctx, a: argparse.Namespace) -> None:
    env_key, env_range = os.environ.get("ETCDCTL_WATCH_KEY", ""), os.environ.get("ETCDCTL_WATCH_RANGE_END", "")
    if not env_key and env_range:
        raise CtlError(f"ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END={quote(env_range)}", EXIT_BAD_ARGS)
    c = ctx.client()
    if a.interactive:
        await _interactive(ctx, c, env_key, env_range)
        return
    args, exec_args = list(a.args), list(a.exec_args or [])
    if a.exec_sep and not exec_args:
        raise CtlError("bad number of arguments (found separator --, but no commands)", EXIT_BAD_ARGS)
    if env_key:
        if args:
            raise CtlError("bad number of arguments (conflicting environment variables)", EXIT_BAD_ARGS)
        args = [env_key] + ([env_range] if env_range else [])
    w = await _start(c, a, args)
    await _print(ctx, w, exec_args)
    raise CtlError("watch is canceled by the server", EXIT_INTERRUPTED)


async def _interactive(ctx: Ctx, c: Client, env_key: str, env_range: str) -> None:
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    parser = argparse.ArgumentParser(prog="watch", add_help=False, exit_on_error=False)
    _watch_parser(parser)
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line.endswith("\n"):
            raise CtlError("error reading watch request line: EOF", EXIT_INVALID_INPUT)
        line = line[:-1]
        args = argify(line)
        if not args:
            sys.stderr.write(f"Invalid command: {line} (watch and progress supported)\n")
            continue
        if args[0] == "watch":
            if len(args) < 2 and not env_key:
                sys.stderr.write(f"Invalid command {line} (command type or key is not provided)\n")
                continue
            wargs, exec_args = _split_exec(args[1:])
            try:
                ns = parser.parse_args(wargs)
            except (argparse.ArgumentError, SystemExit) as e:
                raise CtlError(str(e), EXIT_BAD_ARGS) from None
            keys = list(ns.args)
            if env_key:
                keys = [env_key] + ([env_range] if env_range else []) + keys
            try:
                w = await _start(c, ns, keys)
            except CtlError as e:
                sys.stderr.write(f"Invalid command {line} ({e.message})\n")
                continue
            tasks.append(asyncio.get_running_loop().create_task(_print(ctx, w, exec_args)))
        elif args[0] == "progress":
            try:
                await c.watcher.request_progress()
            except errors.EtcdError as e:
                raise CtlError(e.message, EXIT_ERROR) from None
        else:
            sys.stderr.write(f"Invalid command {line} (only support watch)\n")


def register(sub: Any, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("watch", parents=[parent])
    _watch_parser(p)
    p.set_defaults(func=cmd_watch, exec_args=None, exec_sep=False)
