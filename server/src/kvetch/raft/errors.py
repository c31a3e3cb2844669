"""Errors raised by the Raft core and its storage."""

from __future__ import annotations


class RaftError(Exception):
    """Base class of every error raised by kvetch.raft."""


class ProposalDropped(RaftError):
    """The proposal was not accepted: no known leader, a leadership transfer is in
    progress, or this node was removed. Servers map it to etcd's "no leader" /
    "leader changed" errors and let the client retry."""


class StepLocalMsg(RaftError):
    """A local-only message type was given to step() from the network."""


class StepPeerNotFound(RaftError):
    """A response message came from a peer that is not in the configuration."""


class Compacted(RaftError):
    """The requested index is older than the first available log index."""


class Unavailable(RaftError):
    """The requested index is newer than the last log index."""


class SnapOutOfDate(RaftError):
    """The snapshot given is older than the one the storage already has."""


class SnapshotTemporarilyUnavailable(RaftError):
    """The storage cannot produce a snapshot right now; retry later."""


class ConfChangeRejected(RaftError):
    """The configuration change is invalid for the current configuration."""
