"""Multi-architecture OCI images of the server, built without a Docker engine:
Debian root filesystems (``rootfs``), the application layer (``app``), an OCI
image layout writer (``oci``), a local registry and skopeo (``registry``), and
the per-architecture smoke test under qemu user emulation (``smoke``)."""
