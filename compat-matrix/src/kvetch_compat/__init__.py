"""kvetch-compat: the compatibility matrix."""
