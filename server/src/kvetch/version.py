"""The one source of kvetch's own semantic version and the API versions derived from it."""

from __future__ import annotations

__version__ = "0.2.0"
#: Storage schema version written by this build (MAJOR.MINOR of the server).
def major_minor(version: str = __version__) -> str:
    """Return the MAJOR.MINOR part of a semantic version string."""
    major, minor, *_ = version.split(".")
    return f"{major}.{minor}"


SERVER_VERSION = __version__
CLUSTER_VERSION = major_minor(__version__)
