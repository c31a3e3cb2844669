"""Command line of kvetch-release (placeholder until the release issue lands)."""

import sys


def main() -> int:
    print("kvetch-release: not implemented yet", file=sys.stderr)
    return 2
