"""The pruners: the project's saturation pruner (a method per rule), Optuna's by name, and why."""
