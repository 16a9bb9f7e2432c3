"""What is shown: every printed line, progress, optuna-dashboard, the report, figures, importances."""
