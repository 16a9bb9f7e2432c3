"""The samplers by name, wrapped: trial 0 trains the baseline, TPE sees capped near misses at their cap."""
