"""`lenet-search optimize`: the search, with its progress shown as it goes."""

from __future__ import annotations

import sys
from typing import Any

import click

from search.cli.group import Bug
from search.cli.options import request_options
from search.run.spec import OptimizeRequest


@click.command()
@request_options(OptimizeRequest)
@click.option("--quiet", is_flag=True, help="No progress bar and no per-trial lines.")
def optimize(quiet: bool, **request: Any) -> None:
    """Search for the schedule that reaches the target validation accuracy in the least
    training time, storing every trial in the study.

    \b
    Example:
      lenet-search optimize --trials 100 --data ../shared/data/cifar10-images.tar.gz
      lenet-search optimize --trials 30 --jobs 2 --study quick --storage sqlite:///studies/quick.db
    """
    from search.run.optimize import optimize as run_optimize
    from search.run.prepare import Prepared
    from search.views.confirmation import confirm_run_line
    from search.views.dashboard import save_trial_note
    from search.views.progress import StudyProgress
    from search.views.text import interrupted_message, optimize_summary, study_header

    progress: list[StudyProgress] = []

    def on_start(prepared: Prepared) -> None:
        for note in prepared.notes:
            click.echo(f"Warning: {note}", err=True)
        if not quiet:
            click.echo(study_header(prepared), err=True)
        progress.append(StudyProgress.of(prepared.study, prepared.request.n_trials, quiet=quiet))

    def say(line: str) -> Any:
        return None if quiet else lambda *_: click.echo(line, err=True)

    try:
        result = run_optimize(
            OptimizeRequest(**request),
            on_start=on_start,
            on_trial=lambda t: progress[0].trial_finished(t),
            on_confirm=None if quiet else lambda run: progress[0].write(confirm_run_line(run)),
            on_calibrate=say("calibrating the target (training the reference schedule)..."),
            on_clock=say("measuring the step clock (each batch size, about 7-30 s)..."),
            trial_note=save_trial_note,
        )
    finally:
        if progress:
            progress[0].close()
    if result.interrupted is not None:
        click.echo(interrupted_message(result), err=True)
        sys.exit(result.interrupted)
    if result.workers_failed:
        raise Bug(
            f"worker(s) exited with codes {list(result.worker_codes)}; rerun the same command to finish the study"
        )
    click.echo("\n".join(optimize_summary(result)))
