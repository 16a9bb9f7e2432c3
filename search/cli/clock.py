"""`lenet-search clock`: this device's step clock, measured and written to a file."""

from __future__ import annotations

from typing import Any

import click

from search.cli.options import request_options
from search.clock.calibration import ClockRequest


@click.command()
@request_options(ClockRequest)
def clock(**request: Any) -> None:
    """Measure what one optimizer step costs here, per batch size, as a study's calibration does
    (7-30 s on 2 cores), and write it with the hardware it was measured on: for
    `studies reprice --clock`, `optimize --clock-from` and `compare`.

    \b
    Example:
      lenet-search clock --data ../shared/data/cifar10-images.tar.gz --threads 1 --out studies/clock-1thread.json
    """
    from search.clock.calibration import measure_to_file
    from search.views.names import clock_name
    from search.views.text import clock_lines_of

    measured = measure_to_file(ClockRequest(**request))
    click.echo(f"step clock of {clock_name(measured)} written to {request['out']}")
    click.echo("\n".join(clock_lines_of(measured)))
