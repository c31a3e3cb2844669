"""Command line of kvetch-compat (placeholder until the compat-matrix issue lands)."""

import sys


def main() -> int:
    print("kvetch-compat: not implemented yet", file=sys.stderr)
    return 2
