"""The `lenet-search` command line: parses arguments, calls the library, and turns library
errors into one-line messages with exit code 2."""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import fields
from pathlib import Path
from typing import Any

import click

from lenet.data import DEFAULT_SPLIT_SEED, DEFAULT_VAL_SIZE, DataError, load_dataset
from lenet.device import resolve_device
from lenet.train import EvalRecord, TrainConfig
from search.configfile import ConfigFileError, load_config_file
from search.provenance import stamp

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
    if config_file is not None:
        loaded = load_config_file(config_file)
        values = loaded.config.to_dict()
        target = target if target is not None else loaded.target
    values.update({k: v for k, v in overrides.items() if v is not None})
    config = TrainConfig.from_dict(values)
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
        run = train_and_test(config, dataset, target=target, threads=threads, on_eval=on_eval)
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
    click.echo(f"epochs: {m['epochs']:g}, training time: {m['train_seconds']:.1f} s "
               f"(wall {m['wall_seconds']:.1f} s with evaluation)")  # fmt: skip
    click.echo(f"validation accuracy: best {m['best_val_accuracy']:.4f}, final {m['final_val_accuracy']:.4f}")
    if target is not None:
        if m["seconds_to_target"] is None:
            click.echo(f"target {target:.4f}: not reached")
        else:
            click.echo(f"target {target:.4f}: reached after {m['seconds_to_target']:.1f} s of training "
                       f"(epoch {m['epochs_to_target']:g})")  # fmt: skip
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
