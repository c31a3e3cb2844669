"""kvetch: an etcd v3 compatible key-value server, replicated with Raft."""

from kvetch.version import __version__

__all__ = ["__version__"]
