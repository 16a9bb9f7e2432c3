"""The `lenet-search` command line: parses arguments, calls the library, and turns library
errors into one-line messages with exit code 2."""

from __future__ import annotations

import json
import sys
import time
import traceback
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lenet.data import DEFAULT_SPLIT_SEED, DEFAULT_VAL_SIZE, DataError, load_dataset
from lenet.device import resolve_device
from lenet.train import EvalRecord, TrainConfig
from search.configfile import ConfigFileError, load_config_file
from search.provenance import stamp
from search.space import DEFAULT_EVALS_PER_EPOCH, DEFAULT_MAX_EPOCHS
from search.study import DEFAULT_STORAGE, DEFAULT_STUDY, PRUNERS, SAMPLERS
from search.target import DEFAULT_TARGET

if TYPE_CHECKING:
    from search.launch import Prepared

# Errors that mean "the input was wrong": one line, exit code 2, no traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (DataError, ConfigFileError, ValueError, FileNotFoundError)
DEFAULT_RUNS_DIR = Path("studies") / "runs"


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def data_option(f):
    return click.option(
        "--data",
        envvar="LENET_DATA",
        default=None,
        metavar="PATH",
        help="CIFAR-10 source: cifar-10-python.tar.gz, cifar-10-batches-py/, or an image folder "
        "{train,test}/<class>/ (or a .tar.gz/.zip of one). Env: LENET_DATA. "
        "[default: torchvision's download into the cache]",
    )(f)


def device_option(f):
    return click.option(
        "--device", default="auto", show_default=True, help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps."
    )(f)


def threads_option(f):
    return click.option(
        "--threads",
        type=click.IntRange(min=1),
        default=None,
        help="torch CPU threads. [default: all cores]",
    )(f)


def val_size_option(f):
    return click.option(
        "--val-size",
        type=click.IntRange(min=1),
        default=DEFAULT_VAL_SIZE,
        show_default=True,
        help="Training images held out (stratified, seeded) for validation.",
    )(f)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
    from search.runs import train_and_test, write_run

    values: dict[str, Any] = {}
    reported = None  # the exported trial's own time to target, to compare with
    if config_file is not None:
        loaded = load_config_file(config_file)
        values = loaded.config.to_dict()
        target = target if target is not None else loaded.target
        reported = (loaded.document.get("metrics") or {}).get("seconds_to_target")
    values.update({k: v for k, v in overrides.items() if v is not None})
    config = TrainConfig.from_dict(values)
    if stop_at_target and target is None:
        raise click.UsageError("--stop-at-target needs a target: --target, or a --config export that has one")
    dev = resolve_device(device)
    dataset = load_dataset(data, dev, val_size=val_size, split_seed=DEFAULT_SPLIT_SEED)

    bar = None
    if not quiet and not as_json:
        from tqdm import tqdm

        bar = tqdm(total=config.max_epochs, unit="epoch", desc="train", file=sys.stderr, dynamic_ncols=True,
                   bar_format="{l_bar}{bar}| {n:.4g}/{total} [{elapsed}<{remaining}{postfix}]")  # fmt: skip

    def on_eval(record: EvalRecord) -> None:
        if bar is not None:
            bar.update(record.epoch - bar.n)
            bar.set_postfix(loss=f"{record.train_loss:.3f}", train=f"{record.train_accuracy:.3f}",
                            val=f"{record.val_accuracy:.3f}", lr=f"{record.lr:.3g}")  # fmt: skip

    try:
        run = train_and_test(config, dataset, target=target, stop_at_target=stop_at_target, threads=threads,
                             on_eval=on_eval)  # fmt: skip
    finally:
        if bar is not None:
            bar.close()

    paths = {}
    if out_dir is not None or not as_json:
        paths = write_run(out_dir or DEFAULT_RUNS_DIR / stamp(), run, dataset)
    m = run.metrics
    if as_json:
        click.echo(json.dumps(m, indent=2))
        return
    click.echo(f"started {m['started']}, finished {m['finished']} on {m['device']}"
               + (f" ({m['threads']} threads)" if m["threads"] else ""))  # fmt: skip
    click.echo(f"outcome: {m['outcome']} ({m['reason']})")
    click.echo(f"epochs: {m['epochs']:.4g}, training time: {m['train_seconds']:.1f} s "
               f"(wall {m['wall_seconds']:.1f} s with evaluation)")  # fmt: skip
    click.echo(f"validation accuracy: best {m['best_val_accuracy']:.4f}, final {m['final_val_accuracy']:.4f}")
    if target is not None:
        if m["seconds_to_target"] is None:
            click.echo(f"target {target:.4f}: not reached")
        else:
            click.echo(f"target {target:.4f}: reached after {m['seconds_to_target']:.1f} s of training "
                       f"(epoch {m['epochs_to_target']:.4g})")  # fmt: skip
            if reported:
                change = 100 * (m["seconds_to_target"] / reported - 1)
                click.echo(f"  the exported trial reported {reported:.1f} s ({change:+.0f} % here)")
    click.echo(f"test accuracy: {m['test_accuracy']:.4f} (loss {m['test_loss']:.4f})")
    for kind, path in paths.items():
        click.echo(f"{kind}: {path}")


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
    from lenet.bench import run_benchmark
    from lenet.device import set_threads

    dev = resolve_device(device)
    dataset = load_dataset(data, dev, val_size=val_size)
    threads_used = set_threads(threads)
    rows = run_benchmark(
        dataset,
        data,
        batch_sizes,
        epochs=epochs,
        naive_batch_sizes=[] if no_naive else naive_batch_sizes,
        threads=threads,
        num_workers=workers,
    )
    if as_json:
        payload = {"device": str(dev), "threads": threads_used, "train_images": len(dataset.train_x),
                   "rows": [r.to_dict() for r in rows]}  # fmt: skip
        click.echo(json.dumps(payload, indent=2))
        return
    click.echo(f"device {dev}, {threads_used} torch threads, {len(dataset.train_x)} training images per epoch")
    click.echo(f"{'pipeline':<9}{'batch':>7}{'s/epoch':>10}{'images/s':>11}{'GFLOP/s':>9}{'speed-up':>10}")
    for r in rows:
        speedup = f"{r.speedup:.1f}x" if r.speedup is not None else "-"
        click.echo(f"{r.pipeline:<9}{r.batch_size:>7}{r.epoch_seconds:>10.2f}{r.images_per_second:>11.0f}"
                   f"{r.gflops:>9.1f}{speedup:>10}")  # fmt: skip


# -- optimize --------------------------------------------------------------------------------


def storage_option(f):
    return click.option(
        "--storage", default=DEFAULT_STORAGE, show_default=True, envvar="LENET_STORAGE",
        help="Optuna RDB storage URL: sqlite:///FILE, postgresql://USER@HOST/DB, mysql://... Env: LENET_STORAGE.",
    )(f)  # fmt: skip


def study_option(f):
    return click.option("--study", "study_name", default=DEFAULT_STUDY, show_default=True, help="Study name.")(f)


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
@click.option("--baseline/--no-baseline", default=True, show_default=True,
              help="A new study's first trial trains `lenet-search train`'s default schedule (where the space "
                   "allows it), so the pruner has a time to beat from the start.")  # fmt: skip
@val_size_option
@click.option("--quiet", is_flag=True, help="No progress bar and no per-trial lines.")
def optimize(
    trials: int, study_name: str, storage: str, data: str | None, device: str, max_epochs: int | None,
    evals_per_epoch: int | None, target_text: str | None, sampler: str, pruner: str, jobs: int,
    timeout: float | None, seed: int,
    space_file: Path | None, baseline: bool, val_size: int, quiet: bool,
) -> None:  # fmt: skip
    """Search for the schedule that reaches the target validation accuracy in the least
    training time, storing every trial in the study.

    \b
    Example:
      lenet-search optimize --trials 100 --data ../shared/data/cifar10-images.tar.gz
      lenet-search optimize --trials 30 --jobs 2 --study quick --storage sqlite:///studies/quick.db
    """
    from search.launch import prepare
    from search.optimize import quiet_optuna
    from search.study import close_storage

    quiet_optuna()
    prepared = prepare(
        study_name=study_name, storage_url=storage, n_trials=trials, target_text=target_text,
        space_file=space_file, max_epochs=max_epochs, evals_per_epoch=evals_per_epoch, sampler=sampler,
        pruner=pruner, seed=seed,
        data=data, device=device, jobs=jobs, timeout=timeout, val_size=val_size, baseline=baseline,
        on_calibrate=None if quiet else lambda: click.echo("calibrating the target (training the reference schedule)...", err=True),
    )  # fmt: skip
    try:
        _run_study(prepared, trials, study_name, storage, jobs, quiet)
    finally:
        close_storage(prepared.storage)


def _run_study(prepared: "Prepared", trials: int, study_name: str, storage: str, jobs: int, quiet: bool) -> None:
    """Run the prepared study with progress, then print the summary and the next commands."""
    from optuna.trial import TrialState

    from search.launch import best_summary
    from search.optimize import Interrupted, run_worker, run_workers
    from search.progress import StudyProgress
    from search.study import count_states

    spec, study = prepared.spec, prepared.study
    for note in prepared.notes:
        click.echo(f"Warning: {note}", err=True)
    if not quiet:
        click.echo(f"study {study_name!r} in {storage}: target {spec.target:.4f} "
                   f"({study.user_attrs.get('target_source')}), {trials} trials, {jobs} worker(s) x "
                   f"{prepared.threads} threads on {spec.device}", err=True)  # fmt: skip
    already = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    progress = StudyProgress(trials, already, quiet=quiet)
    started = time.monotonic()
    try:
        if jobs == 1:
            run_worker(spec, 0, on_trial=progress.trial_finished)
        else:
            codes = run_workers(spec, jobs, on_trial=progress.trial_finished)
            interrupted = [c for c in codes if c in (130, 143)]
            if interrupted:
                raise Interrupted(interrupted[0] - 128)
            if any(c != 0 for c in codes):
                _fail(f"worker(s) exited with codes {codes}; rerun the same command to finish the study")
    except KeyboardInterrupt as exc:
        progress.close()
        code = exc.exit_code if isinstance(exc, Interrupted) else 130
        click.echo(f"Interrupted ({exc or 'SIGINT'}): the running trial ended as FAIL with its reason and does not "
                   f"count. Resume with the same command: lenet-search optimize --trials {trials} "
                   f"--study {study_name} --storage {storage}", err=True)  # fmt: skip
        sys.exit(code)
    progress.close()
    elapsed = time.monotonic() - started
    counts = count_states(study)
    best = best_summary(study)
    click.echo(f"finished: {counts['complete']} reached the target, {counts['pruned']} pruned, "
               f"{counts['fail']} failed; {elapsed:.0f} s wall")  # fmt: skip
    if best is None:
        click.echo(f"no trial reached the target {spec.target:.4f} yet; try more trials, more --max-epochs, or a lower --target")
    else:
        cfg = best["config"]
        click.echo(f"best: trial {best['number']} reached {spec.target:.4f} in {best['seconds_to_target']:.1f} s of "
                   f"training (epoch {best['epochs_to_target']:.4g}, best val {best['best_val_accuracy']:.4f})")  # fmt: skip
        click.echo(f"  schedule: lr {cfg.get('lr'):.4g}, batch {cfg.get('batch_size')}, StepLR every "
                   f"{cfg.get('step_size')} epochs x {cfg.get('gamma'):.3g}, momentum {cfg.get('momentum'):.3g}")  # fmt: skip
    click.echo(f"stored in {storage} as study {study_name!r}")
    click.echo("next:")
    click.echo(f"  lenet-search dashboard --storage {storage}")
    click.echo(f"  lenet-search export --study {study_name} --storage {storage} -o studies/best.json")


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
    from search.study import make_storage

    store = make_storage(storage)
    click.echo(f"optuna-dashboard for {storage} at http://{host}:{port}/dashboard (Ctrl-C to stop)", err=True)
    serve(store, host, port)


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
    from search.export import export_document, pick_trial, write_json
    from search.study import load_existing, make_storage

    study = load_existing(make_storage(storage), study_name)
    trial = pick_trial(study, trial_number)
    document = export_document(study, trial, storage)
    write_json(output, document)
    m = document["metrics"]
    reached = f"{m['seconds_to_target']:.1f} s to target" if m["seconds_to_target"] is not None else "did not reach the target"
    click.echo(f"exported trial {trial.number} of {study_name!r} ({reached}, best val {m['best_val_accuracy']:.4f}) to {output}")


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
    from search.study import make_storage

    rows = list_studies(make_storage(storage))
    if not rows:
        click.echo(f"no studies in {storage}")
        return
    click.echo(f"{'study':<24}{'trials':>7}{'done':>6}{'pruned':>8}{'failed':>8}{'best s':>9}{'target':>8}  created / prune reasons")
    for r in rows:
        best = f"{r.best_value:.1f}" if r.best_value is not None else "-"
        target = f"{r.target:.4f}" if r.target is not None else "-"
        click.echo(f"{r.name:<24}{sum(r.states.values()):>7}{r.states.get('complete', 0):>6}{r.states.get('pruned', 0):>8}"
                   f"{r.states.get('fail', 0):>8}{best:>9}{target:>8}  {r.created or '-'}")  # fmt: skip
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(r.outcomes.items(), key=lambda kv: -kv[1]))
        if reasons:
            click.echo(f"{'':<24}{'':>46}  {reasons}")


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
    from optuna.trial import TrialState

    from search.catalog import top_trials
    from search.progress import format_params
    from search.study import load_existing, make_storage

    study = load_existing(make_storage(storage or ctx.obj["storage"]), name)
    click.echo(f"study {name!r}: target {study.user_attrs.get('target')}, {len(study.trials)} trials")
    click.echo(f"{'trial':>5} {'state':<8}{'s to target':>12}{'epochs':>7}{'best val':>9}  parameters | outcome")
    for t in top_trials(study, top):
        value = f"{t.value:.1f}" if t.state == TrialState.COMPLETE else "-"  # a pruned trial's value is its last error
        a = t.user_attrs
        click.echo(f"{t.number:>5} {t.state.name.lower():<8}{value:>12}{a.get('epochs', 0):>7.4g}"
                   f"{a.get('best_val_accuracy', 0):>9.4f}  {format_params(t.params)} | {a.get('reason', '')}")  # fmt: skip


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
    from search.catalog import delete_study
    from search.study import load_existing, make_storage

    store = make_storage(storage or ctx.obj["storage"])
    study = load_existing(store, name)
    if not yes and not click.confirm(f"delete study {name!r} and its {len(study.trials)} trials?", default=False):
        click.echo("nothing deleted")
        return
    count = delete_study(store, name)
    click.echo(f"deleted study {name!r} ({count} trials)")


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
    from search.report import write_report
    from search.study import load_existing, make_storage

    study = load_existing(make_storage(storage), study_name)
    files = write_report(study, out_dir or Path("studies") / f"report-{study_name}", top=top)
    for kind, path in files.items():
        click.echo(f"{kind}: {path}")


# -- entry point -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: every error is one line on stderr with exit code 2,
    unless --debug asks for the traceback."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="lenet-search", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        if debug:
            raise
        _fail(exc.format_message())
    except USER_ERRORS as exc:
        if debug:
            raise
        _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:  # an unexpected failure: still one line, with a pointer to --debug
        if debug:
            traceback.print_exc()
            sys.exit(1)
        click.echo(f"Error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
