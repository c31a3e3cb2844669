"""kvetch-release: the release tooling."""
