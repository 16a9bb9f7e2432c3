"""A trial out of its study and back into training: export it, read a config file, train it again."""
