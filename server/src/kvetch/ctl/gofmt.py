"""Go formatting rules etcdctl's output depends on: %q quoting, humanize.Bytes, durations, hex keys."""

from __future__ import annotations

import math
import unicodedata

_ESC = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _printable(ch: str) -> bool:
    if ch == " ":
        return True
    cat = unicodedata.category(ch)
    return not (cat.startswith(("C", "Z")))


def quote(data: bytes | str) -> str:
    """Go's ``strconv.Quote`` (what ``%q`` prints) of a byte string."""
    b = data.encode() if isinstance(data, str) else data
    out = ['"']
    i = 0
    while i < len(b):
        # decode one UTF-8 sequence, or take an invalid byte alone
        ch: str | None = None
        for n in (1, 2, 3, 4):
            try:
                ch = b[i : i + n].decode("utf-8")
                if len(ch) == 1:
                    break
                ch = None
            except UnicodeDecodeError:
                ch = None
        if ch is None:
            out.append(f"\\x{b[i]:02x}")
            i += 1
            continue
        i += len(ch.encode())
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _ESC:
            out.append(_ESC[ch])
        elif _printable(ch):
            out.append(ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def humanize_bytes(n: int) -> str:
    """github.com/dustin/go-humanize ``Bytes`` (SI units)."""
    sizes = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]
    if n < 10:
        return f"{n} B"
    e = math.floor(math.log(n) / math.log(1000))
    suffix = sizes[int(e)]
    val = math.floor(n / (1000**e) * 10 + 0.5) / 10
    return (f"{val:.0f} {suffix}") if val >= 10 else (f"{val:.1f} {suffix}")


def duration(seconds: float) -> str:
    """Go's ``time.Duration.String``."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    neg = ns < 0
    ns = abs(ns)
    if ns < 1000:
        s = f"{ns}ns"
    elif ns < 1_000_000:
        s = _frac(ns, 1000) + "µs"
    elif ns < 1_000_000_000:
        s = _frac(ns, 1_000_000) + "ms"
    else:
        h, rem = divmod(ns, 3600 * 10**9)
        m, rem = divmod(rem, 60 * 10**9)
        s = _frac(rem, 10**9) + "s"
        if h:
            s = f"{h}h{m}m" + s
        elif m:
            s = f"{m}m" + s
    return "-" + s if neg else s


def _frac(v: int, unit: int) -> str:
    whole, rem = divmod(v, unit)
    if rem == 0:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}." + f"{rem:0{digits}d}".rstrip("0")


def hex_prefixed(b: bytes) -> str:
    """etcdctl's --hex rendering: ``\\x`` before every byte's two hex digits."""
    return "".join(f"\\x{x:02x}" for x in b)


def render_table(header: list[str], rows: list[list[str]]) -> str:
    """olekukonko/tablewriter with etcdctl's settings (upper-case centred header, right-aligned cells)."""
    hdr = [h.upper() for h in header]
    widths = [len(h) for h in hdr]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def center(s: str, w: int) -> str:
        gap = w - len(s)
        left = gap // 2
        return " " * left + s + " " * (gap - left)

    lines = [sep, "|" + "|".join(" " + center(h, w) + " " for h, w in zip(hdr, widths, strict=True)) + "|", sep]
    for r in rows:
        lines.append("|" + "|".join(" " + c.rjust(w) + " " for c, w in zip(r, widths, strict=True)) + "|")
    lines.append(sep)
    return "\n".join(lines) + "\n"
