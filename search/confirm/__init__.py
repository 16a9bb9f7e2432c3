"""The confirmation race: the best candidates again on fresh seeds; its data (race) apart from the racer."""
