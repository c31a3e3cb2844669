"""kvetchctl: an etcdctl-3.5-compatible command line on kvetch.client.

Global flags may appear before or after the command, as with etcdctl:
``--endpoints``, ``--dial-timeout``, ``--command-timeout``, ``-w/--write-out``,
``--hex``, ``--user``, ``--password`` (also from ``ETCDCTL_*`` variables).
Errors print ``Error: <message>`` on stderr and exit with etcdctl's codes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import sys
from typing import Any

from kvetch import version as kvetch_version
from kvetch.client import TLS
from kvetch.client import errors as client_errors

from .commands import cluster, concurrency, kv, lease, watch
from .context import Ctx, parse_duration
from .errors import EXIT_BAD_ARGS, EXIT_BAD_CONNECTION, EXIT_ERROR, CtlError
from .printers import make_printer

API_VERSION = "3.5"

GLOBALS = {
    "endpoints": "127.0.0.1:2379",
    "dial_timeout": "2s",
    "command_timeout": "5s",
    "write_out": "simple",
    "hex": False,
    "user": "",
    "password": "",
    "cacert": "",
    "cert": "",
    "key": "",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # type: ignore[override]
        raise CtlError(message, EXIT_BAD_ARGS)


def _global_parser() -> _Parser:
    g = _Parser(add_help=False)
    s = argparse.SUPPRESS
    g.add_argument("--endpoints", default=s)
    g.add_argument("--dial-timeout", default=s)
    g.add_argument("--command-timeout", default=s)
    g.add_argument("-w", "--write-out", default=s)
    g.add_argument("--hex", action="store_true", default=s)
    g.add_argument("--user", default=s)
    g.add_argument("--password", default=s)
    g.add_argument("--debug", action="store_true", default=s)
    g.add_argument("--keepalive-time", default=s)
    g.add_argument("--keepalive-timeout", default=s)
    g.add_argument("--insecure-skip-tls-verify", action="store_true", default=s)
    g.add_argument("--insecure-transport", action="store_true", default=s)
    g.add_argument("--cacert", default=s)
    g.add_argument("--cert", default=s)
    g.add_argument("--key", default=s)
    return g


def build_parser() -> argparse.ArgumentParser:
    parent = _global_parser()
    p = _Parser(prog="kvetchctl", parents=[parent])
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    kv.register(sub, parent)
    watch.register(sub, parent)
    lease.register(sub, parent)
    cluster.register(sub, parent)
    concurrency.register(sub, parent)
    v = sub.add_parser("version", parents=[parent])
    v.set_defaults(func=cmd_version)
    return p


async def cmd_version(ctx: Ctx, a: argparse.Namespace) -> None:
    # etcdctl prints its own version here; kvetchctl prints kvetch's, in the same shape
    print("kvetchctl version:", kvetch_version.__version__)
    print("API version:", API_VERSION)


def _setting(a: argparse.Namespace, name: str) -> Any:
    if hasattr(a, name):
        return getattr(a, name)
    env = os.environ.get("ETCDCTL_" + name.upper())
    if env is not None:
        if isinstance(GLOBALS[name], bool):
            return env.lower() in ("1", "true", "t")
        return env
    return GLOBALS[name]


def make_ctx(a: argparse.Namespace) -> Ctx:
    user = _setting(a, "user") or None
    password = _setting(a, "password") or None
    if user and password is None:
        if ":" in user:
            user, password = user.split(":", 1)
        else:
            password = getpass.getpass("Password: ")
    is_hex = bool(_setting(a, "hex"))
    wo = _setting(a, "write_out")
    return Ctx(
        endpoints=[e for e in _setting(a, "endpoints").split(",") if e],
        dial_timeout=parse_duration(_setting(a, "dial_timeout")),
        command_timeout=parse_duration(_setting(a, "command_timeout")),
        printer=make_printer(wo, is_hex),
        write_out=wo,
        is_hex=is_hex,
        user=user,
        password=password,
        tls=_tls(a),
    )


def _tls(a: argparse.Namespace) -> TLS | None:
    ca, cert, key = (_setting(a, n) or None for n in ("cacert", "cert", "key"))
    if not (ca or cert or key):
        return None
    try:
        return TLS.from_files(ca, cert, key)
    except OSError as e:
        raise CtlError(str(e), EXIT_BAD_ARGS) from None


async def _run(a: argparse.Namespace) -> int:
    ctx = make_ctx(a)
    try:
        await a.func(ctx, a)
    finally:
        sys.stdout.flush()
        await ctx.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        build_parser().print_help()
        return 0
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(errors="surrogateescape")  # type: ignore[union-attr]
    exec_args: list[str] | None = None
    exec_sep = False
    if "watch" in argv and "--" in argv[argv.index("watch") :]:
        i = argv.index("--", argv.index("watch"))
        exec_args, exec_sep = argv[i + 1 :], True
        argv = argv[:i]
    try:
        a, extra = build_parser().parse_known_args(argv)
        for x in extra:
            if x.startswith("-") and x != "-":
                raise CtlError(f"unknown flag: {x}", EXIT_ERROR)
        if extra:
            # positional words after a flag (``put k --ignore-value v``): pflag keeps them in order
            if not hasattr(a, "args"):
                raise CtlError(f"unknown command {extra[0]!r}", EXIT_ERROR)
            a.args = list(a.args) + extra
        if exec_sep:
            a.exec_args, a.exec_sep = exec_args, True
        return asyncio.run(_run(a))
    except CtlError as e:
        sys.stdout.flush()
        sys.stderr.write(f"Error: {e.message}\n")
        return e.code
    except client_errors.EtcdError as e:
        sys.stdout.flush()
        sys.stderr.write(f"Error: {e.message}\n")
        # etcdctl authenticates while building its client, which exits with "bad connection"
        return EXIT_BAD_CONNECTION if isinstance(e, client_errors.AuthFailedError) else EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
