"""What lenet-search stores, as typed records: every key (keys), older versions read as today's (upgrade)."""
