"""The `lenet-search` command line: each command parses its arguments, makes one library
call and prints the result. Refusals the user can fix (lenet.errors.InputError) become one
line with exit code 2, here and nowhere else; any other exception is a bug and says so."""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import click

from lenet.data import DEFAULT_VAL_SIZE
from lenet.errors import InputError
from lenet.train import EvalRecord, TrainConfig
from search.algorithms import PRUNERS, SAMPLERS
from search.confirm import DEFAULT_SEEDS, DEFAULT_TOP
from search.prepare import CLOCK_KINDS
from search.space import DEFAULT_EVALS_PER_EPOCH, DEFAULT_MAX_EPOCHS
from search.storage import DEFAULT_STORAGE
from search.study import DEFAULT_STUDY
from search.target import DEFAULT_TARGET
from search.train_run import DEFAULT_RUNS_DIR


class Refused(click.ClickException):
    """Input the user can fix: one line, exit code 2."""

    exit_code = 2


class Bug(click.ClickException):
    """An exception no refusal explains: a bug in lenet-search."""

    exit_code = 1


_HELP_ERRORS = tuple(getattr(click.exceptions, n) for n in ("NoArgsIsHelpError",) if hasattr(click.exceptions, n))


def _one_line(exc: click.UsageError) -> Refused:
    """A usage error without the usage block above it: one line, as every refusal is."""
    return Refused(exc.format_message())


class LenetGroup(click.Group):
    """Turns library exceptions into Click's one-line errors, in this one place."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except _HELP_ERRORS:
            raise
        except click.UsageError as exc:
            raise _one_line(exc) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _HELP_ERRORS:
            raise
        except click.UsageError as exc:
            raise _one_line(exc) from exc
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except InputError as exc:
            if ctx.params.get("debug"):
                raise
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise Refused(text) from exc
        except Exception as exc:  # not KeyboardInterrupt or SystemExit: those are not bugs
            if ctx.params.get("debug"):
                raise
            detail = str(exc).splitlines()[0] if str(exc) else ""
            raise Bug(f"internal error, a bug in lenet-search: {type(exc).__name__}: {detail} "
                      "(run again with --debug to see the traceback)") from exc  # fmt: skip


# Options several commands share, declared once.
data_option = click.option(
    "--data", envvar="LENET_DATA", default=None, metavar="PATH",
    help="CIFAR-10 source: cifar-10-python.tar.gz, cifar-10-batches-py/, or an image folder "
    "{train,test}/<class>/ (or a .tar.gz/.zip of one). Env: LENET_DATA. [default: torchvision's download into the cache]",
)  # fmt: skip
device_option = click.option("--device", default="auto", show_default=True,
                             help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps.")  # fmt: skip
threads_option = click.option("--threads", type=click.IntRange(min=1), default=None,
                              help="torch CPU threads. [default: all cores]")  # fmt: skip
val_size_option = click.option("--val-size", type=click.IntRange(min=1), default=DEFAULT_VAL_SIZE, show_default=True,
                               help="Training images held out (stratified, seeded) for validation.")  # fmt: skip
storage_option = click.option(
    "--storage", default=DEFAULT_STORAGE, show_default=True, envvar="LENET_STORAGE",
    help="Optuna RDB storage URL: sqlite:///FILE, postgresql://USER@HOST/DB, mysql://... Env: LENET_STORAGE.",
)  # fmt: skip
study_option = click.option("--study", "study_name", default=DEFAULT_STUDY, show_default=True, help="Study name.")


@click.group(cls=LenetGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.version_option(package_name="lenet-search")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Hyperparameter search for LeNet-5 on CIFAR-10: find the learning-rate schedule that
    reaches saturation fastest.

    \b
    Example:
      lenet-search optimize --trials 100 --data ../shared/data/cifar10-images.tar.gz
    """
    ctx.obj = {"debug": debug}


# -- train -----------------------------------------------------------------------------------


def train_config_options(f):
    """One flag per TrainConfig field (kebab-case), default None so a --config file's values
    stand unless a flag is given."""
    for fld in reversed(fields(TrainConfig)):
        name = fld.name.replace("_", "-")
        help_text = f"{fld.metadata['help']} [default: {fld.default}]"
        if fld.type in ("bool", bool):
            decls = [f"--{name}/--no-{name}"]
            f = click.option(*decls, fld.name, default=None, help=help_text)(f)
            continue
        kind = {"int": int, "float": float}.get(str(fld.type), type(fld.default))
        decls = [f"--{name}", fld.name]
        if fld.name == "max_epochs":
            decls.insert(1, "--epochs")
        f = click.option(*decls, type=kind, default=None, help=help_text)(f)
    return f


@cli.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Start from this config (an `export` file or a JSON/TOML mapping of the fields below); flags override it.",
)
@train_config_options
@data_option
@device_option
@threads_option
@val_size_option
@click.option("--target", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Validation accuracy to time (seconds to target). [default: the --config export's target]")  # fmt: skip
@click.option("--stop-at-target", is_flag=True, help="End training at the first evaluation at the target, as a study's trial does.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help=f"Folder for metrics.json and model.pt. [default: {DEFAULT_RUNS_DIR}/<timestamp>]")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON instead of writing them (unless --out is given).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(
    config_file: Path | None,
    data: str | None,
    device: str,
    threads: int | None,
    val_size: int,
    target: float | None,
    stop_at_target: bool,
    out_dir: Path | None,
    as_json: bool,
    quiet: bool,
    **overrides: Any,
) -> None:
    """Train LeNet-5 once, evaluate it on the test set, and save metrics and the model.

    \b
    Example:
      lenet-search train --data ../shared/data/cifar10-images.tar.gz --batch-size 128 \\
          --lr 0.05 --momentum 0.9 --step-size 4 --gamma 0.3 --epochs 10
    """
    from search.train_run import TrainRequest, run_training, summary_lines

    request = TrainRequest(overrides=overrides, config_file=config_file, data=data, device=device, threads=threads,
                           val_size=val_size, target=target, stop_at_target=stop_at_target, out_dir=out_dir,
                           write=not as_json)  # fmt: skip
    bar = None if quiet or as_json else _EpochBar()
    try:
        run = run_training(request, on_start=bar.start if bar else None, on_eval=bar.on_eval if bar else None)
    finally:
        if bar is not None:
            bar.close()
    if as_json:
        click.echo(json.dumps(run.metrics, indent=2))
    else:
        click.echo("\n".join(summary_lines(run)))


class _EpochBar:
    """A tqdm bar over the run's epochs, with loss and accuracies."""

    def __init__(self) -> None:
        self.bar: Any = None

    def start(self, config: TrainConfig) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=config.max_epochs, unit="epoch", desc="train", file=sys.stderr, dynamic_ncols=True,
                        bar_format="{l_bar}{bar}| {n:.4g}/{total} [{elapsed}<{remaining}{postfix}]")  # fmt: skip

    def on_eval(self, record: EvalRecord) -> None:
        self.bar.update(record.epoch - self.bar.n)
        self.bar.set_postfix(loss=f"{record.train_loss:.3f}", train=f"{record.train_accuracy:.3f}",
                             val=f"{record.val_accuracy:.3f}", lr=f"{record.lr:.3g}")  # fmt: skip

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# -- bench -----------------------------------------------------------------------------------


def _int_list(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        items = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not items or any(v < 1 for v in items):
        raise click.BadParameter(f"expected positive integers, got {value!r}")
    return items


@cli.command()
@data_option
@device_option
@threads_option
@val_size_option
@click.option("--batch-sizes", default="32,128,256,512,2048", show_default=True, callback=_int_list,
              help="Batch sizes to time the engine at.")  # fmt: skip
@click.option("--naive-batch-sizes", default=None, callback=_int_list,
              help="Batch sizes to time the naive DataLoader pipeline at. [default: --batch-sizes]")  # fmt: skip
@click.option("--no-naive", is_flag=True, help="Skip the naive pipeline.")
@click.option("--epochs", type=click.IntRange(min=1), default=2, show_default=True,
              help="Timed epochs per row (median reported; the engine also runs one warm-up epoch).")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="DataLoader worker processes of the naive pipeline.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def bench(
    data: str | None,
    device: str,
    threads: int | None,
    val_size: int,
    batch_sizes: list[int],
    naive_batch_sizes: list[int] | None,
    no_naive: bool,
    epochs: int,
    workers: int,
    as_json: bool,
) -> None:
    """Time training epochs of the engine against the naive torchvision DataLoader pipeline,
    side by side in one run, per batch size.

    \b
    Example:
      lenet-search bench --data ../shared/data/cifar10-images.tar.gz --batch-sizes 32,128,512
    """
    from lenet.bench import bench as run_bench

    report = run_bench(data, device, batch_sizes, epochs=epochs, naive_batch_sizes=[] if no_naive else naive_batch_sizes,
                       threads=threads, val_size=val_size, num_workers=workers)  # fmt: skip
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else "\n".join(report.table()))


# -- optimize --------------------------------------------------------------------------------


@cli.command()
@click.option("--trials", type=click.IntRange(min=1), default=100, show_default=True,
              help="The study's total of finished (complete + pruned) trials, not N more: rerunning after an "
                   "interruption runs only the rest, and workers on one storage share the count.")  # fmt: skip
@study_option
@storage_option
@data_option
@device_option
@click.option("--max-epochs", type=click.IntRange(min=1), default=None,
              help=f"Epoch budget per trial. [default: the --space file's, else {DEFAULT_MAX_EPOCHS}]")  # fmt: skip
@click.option("--evals-per-epoch", type=click.IntRange(min=1), default=None,
              help=f"Validation evaluations per epoch: where time to target is measured and the pruner decides. "
                   f"[default: the --space file's, else {DEFAULT_EVALS_PER_EPOCH}]")  # fmt: skip
@click.option("--target", "target_text", default=None, metavar="ACC|auto",
              help=f"Validation accuracy that counts as saturated; 'auto' calibrates it on this data. Stored with "
                   f"the study; reopening with another is refused. [default: the study's, else {DEFAULT_TARGET}]")  # fmt: skip
@click.option("--sampler", type=click.Choice(SAMPLERS), default="tpe", show_default=True, help="Optuna sampler.")
@click.option("--pruner", type=click.Choice(PRUNERS), default="saturation", show_default=True,
              help="saturation: the project's (diverged, cannot win, underfit at equal time, plateau, out of "
                   "reach); "
                   "or Optuna's median / hyperband; none.")  # fmt: skip
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes on this machine, each with cores/jobs torch threads.")  # fmt: skip
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Start no new trial after this many seconds. [default: none]")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sampler and of every trial's training.")
@click.option("--space", "space_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="TOML file that narrows, widens or fixes search parameters (see docs/search.md).")  # fmt: skip
@click.option("--clock", type=click.Choice(CLOCK_KINDS), default=None,
              help="What a trial's seconds are. calibrated: its optimizer steps priced by a table measured once "
                   "when the study is created (the same computation always costs the same; reproducible, and "
                   "workers on other hosts join in the study's clock); measured: read off the wall clock. "
                   "[default: the study's, else calibrated]")  # fmt: skip
@click.option("--clock-from", default=None, metavar="FILE|study:NAME",
              help="Reuse a step clock instead of measuring one: an `export` file, a clock JSON, or another "
                   "study in this storage, so that a study can be repeated exactly.")  # fmt: skip
@click.option("--confirm", "confirm_top", type=click.IntRange(min=0), default=DEFAULT_TOP, show_default=True,
              help="After the search, race this many best candidates (completed trials and capped near misses) "
                   "on fresh seeds, the same for each; rank them by median time to target. 0: off.")  # fmt: skip
@click.option("--confirm-seeds", type=click.IntRange(min=1), default=DEFAULT_SEEDS, show_default=True,
              help="Fresh seeds per candidate in the confirmation race (the study's seed + 1000, + 1001, ...).")  # fmt: skip
@click.option("--baseline/--no-baseline", default=True, show_default=True,
              help="A new study's first trial trains `lenet-search train`'s default schedule (where the space "
                   "allows it), so the pruner has a time to beat from the start.")  # fmt: skip
@val_size_option
@click.option("--quiet", is_flag=True, help="No progress bar and no per-trial lines.")
def optimize(
    trials: int, study_name: str, storage: str, data: str | None, device: str, max_epochs: int | None,
    evals_per_epoch: int | None, target_text: str | None, sampler: str, pruner: str, jobs: int,
    timeout: float | None, seed: int, clock: str | None, clock_from: str | None, confirm_top: int, confirm_seeds: int,
    space_file: Path | None, baseline: bool, val_size: int, quiet: bool,
) -> None:  # fmt: skip
    """Search for the schedule that reaches the target validation accuracy in the least
    training time, storing every trial in the study.

    \b
    Example:
      lenet-search optimize --trials 100 --data ../shared/data/cifar10-images.tar.gz
      lenet-search optimize --trials 30 --jobs 2 --study quick --storage sqlite:///studies/quick.db
    """
    from search.optimize import OptimizeRequest
    from search.optimize import optimize as run_optimize
    from search.progress import StudyProgress
    from search.text import confirm_run_line, interrupted_message, optimize_summary, study_header

    request = OptimizeRequest(
        n_trials=trials, study_name=study_name, storage_url=storage, target_text=target_text, space_file=space_file,
        max_epochs=max_epochs, evals_per_epoch=evals_per_epoch, sampler=sampler, pruner=pruner, seed=seed,
        data=data, device=device, jobs=jobs, timeout=timeout, val_size=val_size, baseline=baseline,
        clock=clock, clock_from=clock_from, confirm_top=confirm_top, confirm_seeds=confirm_seeds,
    )  # fmt: skip
    progress: list[StudyProgress] = []

    def on_start(prepared) -> None:
        for note in prepared.notes:
            click.echo(f"Warning: {note}", err=True)
        if not quiet:
            click.echo(study_header(prepared), err=True)
        progress.append(StudyProgress.of(prepared.study, trials, quiet=quiet))

    try:
        outcome = run_optimize(
            request, on_start=on_start, on_trial=lambda t: progress[0].trial_finished(t),
            on_confirm=None if quiet else lambda run: progress[0].write(confirm_run_line(run)),
            on_calibrate=None if quiet else lambda: click.echo("calibrating the target (training the reference schedule)...", err=True),
            on_clock=None if quiet else lambda: click.echo("measuring the step clock (each batch size, about 15-30 s)...", err=True),
        )  # fmt: skip
    finally:
        if progress:
            progress[0].close()
    if outcome.interrupted is not None:
        click.echo(interrupted_message(outcome), err=True)
        sys.exit(outcome.interrupted)
    if outcome.workers_failed:
        raise Bug(f"worker(s) exited with codes {list(outcome.worker_codes)}; rerun the same command to finish the study")
    click.echo("\n".join(optimize_summary(outcome)))


# -- dashboard, export, studies, report -----------------------------------------------------


@cli.command()
@storage_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for every interface).")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="Port to listen on.")
def dashboard(storage: str, host: str, port: int) -> None:
    """Serve optuna-dashboard on the study storage, each study annotated with its objective,
    target and a plot of validation accuracy against training seconds for its best trials.

    \b
    Example:
      lenet-search dashboard --storage sqlite:///studies/lenet.db --port 8080
    """
    from search.dashboard import serve

    serve(storage, host, port, on_ready=lambda: click.echo(
        f"optuna-dashboard for {storage} at http://{host}:{port}/dashboard (Ctrl-C to stop)", err=True))


@cli.command()
@study_option
@storage_option
@click.option("--trial", "trial_number", type=click.IntRange(min=0), default=None,
              help="Export this trial instead of the best one.")  # fmt: skip
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=Path("studies/best.json"),
              show_default=True, help="JSON file to write.")  # fmt: skip
def export(study_name: str, storage: str, trial_number: int | None, output: Path) -> None:
    """Write the best trial (or --trial N) as a config file that `train --config` retrains:
    every training field, its metrics, and provenance.

    \b
    Example:
      lenet-search export --study lenet5-cifar10 -o studies/best.json
      lenet-search train --config studies/best.json --data ../shared/data/cifar10-images.tar.gz --seed 1
    """
    from search.export import export_trial
    from search.text import export_summary

    exported, confirmed = export_trial(storage, study_name, trial_number, output)
    click.echo(f"exported trial {exported.number} of {study_name!r} to {output}: {export_summary(exported, confirmed)}")


@cli.group(invoke_without_command=True)
@storage_option
@click.pass_context
def studies(ctx: click.Context, storage: str) -> None:
    """List the studies in a storage; `show NAME` and `delete NAME` act on one.

    \b
    Example:
      lenet-search studies --storage sqlite:///studies/lenet.db
      lenet-search studies show lenet5-cifar10 --top 10
    """
    ctx.obj["storage"] = storage
    if ctx.invoked_subcommand is not None:
        return
    from search.catalog import list_studies
    from search.text import studies_table

    rows = list_studies(storage)
    click.echo("\n".join(studies_table(rows)) if rows else f"no studies in {storage}")


@studies.command("show")
@click.argument("name")
@click.option("--storage", default=None, help="Storage URL. [default: the one given to `studies`, else {DEFAULT_STORAGE}]".replace("{DEFAULT_STORAGE}", DEFAULT_STORAGE))
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="How many trials to list.")
@click.pass_context
def studies_show(ctx: click.Context, name: str, storage: str | None, top: int) -> None:
    """Print the top trials of study NAME: completed ones by time to target, then the
    pruned ones that came closest.

    \b
    Example:
      lenet-search studies show lenet5-cifar10 --top 5
    """
    from search.catalog import show_study
    from search.text import study_table

    click.echo("\n".join(study_table(show_study(storage or ctx.obj["storage"], name, top))))


@studies.command("delete")
@click.argument("name")
@click.option("--storage", default=None, help="Storage URL. [default: the one given to `studies`, else {DEFAULT_STORAGE}]".replace("{DEFAULT_STORAGE}", DEFAULT_STORAGE))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def studies_delete(ctx: click.Context, name: str, storage: str | None, yes: bool) -> None:
    """Delete study NAME and all its trials (asks first unless --yes).

    \b
    Example:
      lenet-search studies delete old-study --yes
    """
    from search.catalog import count_trials, delete_study

    url = storage or ctx.obj["storage"]
    if not yes and not click.confirm(f"delete study {name!r} and its {count_trials(url, name)} trials?", default=False):
        click.echo("nothing deleted")
        return
    click.echo(f"deleted study {name!r} ({delete_study(url, name)} trials)")


@cli.command()
@study_option
@storage_option
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder for index.html and the PNGs. [default: studies/report-<study>]")  # fmt: skip
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="Trials in the curve plots.")
def report(study_name: str, storage: str, out_dir: Path | None, top: int) -> None:
    """Write a self-contained HTML report with PNGs: optimisation history, learning curves of
    the top trials against training seconds with the target, their LR schedules, parameter
    importances, and how trials ended.

    \b
    Example:
      lenet-search report --study lenet5-cifar10 -o studies/report
    """
    from search.report import report_study

    files = report_study(storage, study_name, out_dir or Path("studies") / f"report-{study_name}", top=top)
    click.echo("\n".join(f"{kind}: {path}" for kind, path in files.items()))


# -- entry point -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point. Ctrl-C outside a study's trials exits with 130."""
    try:
        cli.main(args=argv, prog_name="lenet-search")
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
