"""The Optuna layer of lenet-search: search space, objective, pruner, study and CLI."""
