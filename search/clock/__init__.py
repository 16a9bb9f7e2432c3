"""The study's clock: pricing a run's steps, where the step clock comes from, whether it holds."""
