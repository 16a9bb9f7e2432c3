"""The Optuna layer of lenet-search, a package per concept (docs/architecture.md)."""
