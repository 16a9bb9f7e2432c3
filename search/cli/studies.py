"""`lenet-search dashboard`, `export`, `studies` and `report`: what is in a storage, shown."""

from __future__ import annotations

from pathlib import Path

import click

from search.cli.options import output_option, storage_option, study_option, sub_storage_option


@click.command()
@storage_option
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback unless --allow-remote)."
)
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="Port to listen on.")
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Serve on an address other machines reach, although optuna-dashboard has no authentication.",
)
def dashboard(storage_url: str, host: str, port: int, allow_remote: bool) -> None:
    """Serve optuna-dashboard on the study storage, each study annotated with its objective,
    target and a plot of validation accuracy against training seconds for its best trials.

    \b
    Example:
      lenet-search dashboard --storage sqlite:///studies/lenet.db --port 8080
    """
    from search.study.storage import shown_url
    from search.views.dashboard import serve

    def ready(warning: str | None) -> None:
        if warning is not None:
            click.echo(f"Warning: {warning}", err=True)
        click.echo(
            f"optuna-dashboard for {shown_url(storage_url)} at http://{host}:{port}/dashboard (Ctrl-C to stop)",
            err=True,
        )

    serve(storage_url, host, port, allow_remote, on_ready=ready)


@click.command()
@study_option
@storage_option
@click.option(
    "--trial",
    "trial_number",
    type=click.IntRange(min=0),
    default=None,
    help="Export this trial instead of the best one.",
)
@output_option(Path("studies/best.json"), "JSON file to write.")
def export(study_name: str, storage_url: str, trial_number: int | None, output: Path) -> None:
    """Write the best trial (or --trial N) as a config file that `train --config` retrains:
    every training field, its metrics, and provenance.

    \b
    Example:
      lenet-search export --study lenet5-cifar10 -o studies/best.json
      lenet-search train --config studies/best.json --data ../shared/data/cifar10-images.tar.gz --seed 1
    """
    from search.retrain.export import export_trial
    from search.views.text import export_summary

    document = export_trial(storage_url, study_name, trial_number, output)
    click.echo(f"exported trial {document.study.trial} of {study_name!r} to {output}: {export_summary(document)}")


@click.group(invoke_without_command=True)
@storage_option
@click.pass_context
def studies(ctx: click.Context, storage_url: str) -> None:
    """List the studies in a storage; `show NAME` and `delete NAME` act on one.

    \b
    Example:
      lenet-search studies --storage sqlite:///studies/lenet.db
      lenet-search studies show lenet5-cifar10 --top 10
    """
    ctx.obj["storage_url"] = storage_url
    if ctx.invoked_subcommand is not None:
        return
    from search.study.catalog import list_studies
    from search.study.storage import shown_url
    from search.views.text import studies_table

    rows = list_studies(storage_url)
    click.echo("\n".join(studies_table(rows)) if rows else f"no studies in {shown_url(storage_url)}")


@studies.command("show")
@click.argument("name")
@sub_storage_option
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="How many trials to list.")
@click.pass_context
def studies_show(ctx: click.Context, name: str, storage_url: str | None, top: int) -> None:
    """Print the top trials of study NAME: completed ones by time to target, then the
    pruned ones that came closest.

    \b
    Example:
      lenet-search studies show lenet5-cifar10 --top 5
    """
    from search.study.catalog import show_study
    from search.views.text import study_table

    click.echo("\n".join(study_table(show_study(storage_url or ctx.obj["storage_url"], name, top))))


@studies.command("reprice")
@click.argument("name")
@sub_storage_option
@click.option(
    "--clock",
    "clock",
    required=True,
    metavar="FILE|study:NAME",
    help="The other clock: a `lenet-search clock` file, an export, or another study in this storage.",
)
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="How many schedules to list.")
@click.option("--json", "as_json", is_flag=True, help="Print every schedule as JSON.")
@click.pass_context
def studies_reprice(
    ctx: click.Context, name: str, storage_url: str | None, clock: str, top: int, as_json: bool
) -> None:
    """Rank study NAME's schedules by what they would cost in another step clock (another machine
    or setting), from the steps each trained: exact for trials that reached the target, a lower
    bound for those its pruner stopped.

    \b
    Example:
      lenet-search studies reprice lenet5-cifar10 --clock studies/clock-1thread.json
    """
    import json

    from search.study.catalog import reprice_study
    from search.views.text import reprice_table

    view = reprice_study(storage_url or ctx.obj["storage_url"], name, clock)
    click.echo(json.dumps(view.to_dict(), indent=2) if as_json else "\n".join(reprice_table(view, top)))


@studies.command("delete")
@click.argument("name")
@sub_storage_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def studies_delete(ctx: click.Context, name: str, storage_url: str | None, yes: bool) -> None:
    """Delete study NAME and all its trials (asks first unless --yes).

    \b
    Example:
      lenet-search studies delete old-study --yes
    """
    from search.study.catalog import count_trials, delete_study

    url = storage_url or ctx.obj["storage_url"]
    if not yes and not click.confirm(f"delete study {name!r} and its {count_trials(url, name)} trials?", default=False):
        click.echo("nothing deleted")
        return
    click.echo(f"deleted study {name!r} ({delete_study(url, name)} trials)")


@click.command()
@study_option
@storage_option
@output_option(
    None,
    "Folder for index.html and the PNGs. [default: studies/report-<study>, the name made a safe file name]",
    "out_dir",
    folder=True,
)
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="Trials in the curve plots.")
def report(study_name: str, storage_url: str, out_dir: Path | None, top: int) -> None:
    """Write a self-contained HTML report with PNGs: optimisation history, learning curves of
    the top trials against training seconds with the target, their LR schedules, parameter
    importances, and how trials ended.

    \b
    Example:
      lenet-search report --study lenet5-cifar10 -o studies/report
    """
    from search.views.report import report_study

    files = report_study(storage_url, study_name, out_dir, top=top)
    click.echo("\n".join(f"{kind}: {path}" for kind, path in files.items()))


@click.command()
@click.argument("targets", nargs=-1, required=True, metavar="STORAGE:NAME...")
@output_option(Path("studies/compare.png"), "PNG of time to target by batch size.", "figure")
def compare(targets: tuple[str, ...], figure: Path) -> None:
    """Compare studies of the same search made on different machines (or settings): each one's
    winner, each winner priced in every other study's clock, and a figure of the fastest time
    to target by batch size per machine.

    \b
    Example:
      lenet-search compare sqlite:///studies/lenet.db:lenet5-cifar10 sqlite:///studies/gpu.db:lenet5-cifar10
    """
    from search.study.machines import compare as run_compare
    from search.views.plots import plot_machines
    from search.views.text import compare_table

    comparison = run_compare(list(targets))
    click.echo("\n".join(compare_table(comparison)))
    click.echo(f"figure: {plot_machines(comparison, figure)}")
