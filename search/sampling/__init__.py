"""The samplers by name, wrapped: trial 0 trains the baseline, TPE sees trials stopped as slow at their pace."""
