"""Replicated-mode tests run on kvetch (and, where marked, on real etcd as the oracle)."""
