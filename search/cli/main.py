"""The command group with every command, and the console-script entry point."""

from __future__ import annotations

import sys

import click

from search.cli.clock import clock
from search.cli.group import cli
from search.cli.optimize import optimize
from search.cli.studies import compare, dashboard, export, report, studies
from search.cli.train import bench, train

for command in (train, bench, clock, optimize, dashboard, export, studies, report, compare):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point. Ctrl-C outside a study's trials exits with 130."""
    try:
        cli.main(args=argv, prog_name="lenet-search")
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
