"""kvetch-compat: the mixed-version compatibility matrix for kvetch and etcd."""

__version__ = "0.1.0"
