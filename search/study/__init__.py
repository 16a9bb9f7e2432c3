"""Studies in their storage: the storage, opening or reopening a study with its checks, queries, catalog."""
