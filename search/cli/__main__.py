"""`python -m search.cli`: the command line."""

from search.cli.main import main

main()
