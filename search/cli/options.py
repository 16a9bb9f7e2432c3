"""Options several commands share, declared once, and options derived from the library's
dataclasses (`TrainConfig`, `OptimizeRequest`): their field metadata holds the help text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any, TypeVar

import click

from lenet.config import TrainConfig
from lenet.data import DEFAULT_VAL_SIZE
from search.study.opening import DEFAULT_STUDY
from search.study.storage import DEFAULT_STORAGE

F = TypeVar("F", bound=Callable[..., Any])

data_option = click.option(
    "--data",
    envvar="LENET_DATA",
    default=None,
    metavar="PATH",
    help="CIFAR-10 source: cifar-10-python.tar.gz, cifar-10-batches-py/, or an image folder {train,test}/<class>/ "
    "(or a .tar.gz/.zip of one). Env: LENET_DATA. [default: torchvision's download into the cache]",
)
device_option = click.option(
    "--device", default="auto", show_default=True, help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps."
)
threads_option = click.option(
    "--threads", type=click.IntRange(min=1), default=None, help="torch CPU threads. [default: all cores]"
)
val_size_option = click.option(
    "--val-size",
    type=click.IntRange(min=1),
    default=DEFAULT_VAL_SIZE,
    show_default=True,
    help="Training images held out (stratified, seeded) for validation.",
)
SHARED = {"data": data_option, "device": device_option, "threads": threads_option, "val_size": val_size_option}
storage_option = click.option(
    "--storage",
    "storage_url",
    default=DEFAULT_STORAGE,
    show_default=True,
    envvar="LENET_STORAGE",
    help="Optuna RDB storage URL: sqlite:///FILE, postgresql://USER@HOST/DB, mysql://... Env: LENET_STORAGE.",
)
study_option = click.option("--study", "study_name", default=DEFAULT_STUDY, show_default=True, help="Study name.")


def sub_storage_option(f: F) -> F:
    """--storage on a subcommand of `studies`: the group's unless given."""
    default = f"the one given to `studies`, else {DEFAULT_STORAGE}"
    return click.option("--storage", "storage_url", default=None, help=f"Storage URL. [default: {default}]")(f)


def _kind(fld: Field[Any]) -> type:
    """The field's value type from its annotation (a string under `from __future__ import annotations`)."""
    name = str(fld.type).replace(" | None", "").strip()
    if name.startswith("tuple[int"):
        return tuple
    return {"int": int, "float": float, "str": str, "bool": bool, "Path": Path}.get(name, str)


def _click_type(fld: Field[Any], kind: type) -> Any:
    meta = fld.metadata
    if "choices" in meta:
        return click.Choice(meta["choices"])
    if kind in (int, float) and {"min", "above", "below"} & set(meta):
        low, low_open = (meta["above"], True) if "above" in meta else (meta.get("min"), False)
        bounds = {"min": low, "min_open": low_open, "max": meta.get("below"), "max_open": "below" in meta}
        return click.IntRange(**bounds) if kind is int else click.FloatRange(**bounds)
    if kind is Path:
        return (
            click.Path(path_type=Path, file_okay=False)
            if meta.get("folder")
            else click.Path(path_type=Path, dir_okay=False)
        )
    return kind


def _option(fld: Field[Any]) -> Callable[[F], F]:
    """The click option of one request field."""
    meta, kind = fld.metadata, _kind(fld)
    flag = meta.get("flag", "--" + fld.name.replace("_", "-"))
    default = None if fld.default is MISSING else fld.default
    extra: dict[str, Any] = {"default": default, "show_default": default is not None, "help": meta["help"]}
    if kind is bool:
        decls = [flag] if meta.get("flag_only") else [f"{flag}/--no-{flag[2:]}"]
        if meta.get("flag_only"):
            extra.update(is_flag=True, show_default=False)
    else:
        decls = [flag]
    if kind is tuple:  # a comma-separated list of positive integers
        extra.update(callback=int_list, default=None if default is None else ",".join(map(str, default)))
    elif kind is not bool:
        extra["type"] = _click_type(fld, kind)
    if "metavar" in meta:
        extra["metavar"] = meta["metavar"]
    if "env" in meta:
        extra["envvar"] = meta["env"]
    return click.option(*decls, fld.name, **extra)


def request_options(cls: type) -> Callable[[F], F]:
    """One option per field of `cls` that has help text, named after the field so the command
    receives keyword arguments `cls(**kwargs)` takes; fields marked `shared` get the shared option."""

    def decorate(f: F) -> F:
        for fld in reversed(fields(cls)):
            if "help" in fld.metadata:
                f = (SHARED[fld.name] if fld.metadata.get("shared") else _option(fld))(f)
        return f

    return decorate


def train_config_options(f: F) -> F:
    """One flag per TrainConfig field (kebab-case), default None so a --config file's values
    stand unless a flag is given."""
    for fld in reversed(fields(TrainConfig)):
        name = fld.name.replace("_", "-")
        help_text = f"{fld.metadata['help']} [default: {fld.default}]"
        if _kind(fld) is bool:
            f = click.option(f"--{name}/--no-{name}", fld.name, default=None, help=help_text)(f)
            continue
        aliases = [fld.metadata["alias"]] if "alias" in fld.metadata else []
        f = click.option(f"--{name}", *aliases, fld.name, type=_kind(fld), default=None, help=help_text)(f)
    return f


def int_list(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    """A comma-separated list of positive integers."""
    if value is None:
        return None
    try:
        items = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not items or any(v < 1 for v in items):
        raise click.BadParameter(f"expected positive integers, got {value!r}")
    return tuple(items)


def output_option(default: Path | None, help: str, dest: str = "output", folder: bool = False) -> Callable[[F], F]:
    """-o/--output: the file (or folder) a command writes."""
    kind = click.Path(path_type=Path, file_okay=False) if folder else click.Path(path_type=Path, dir_okay=False)
    return click.option("-o", "--output", dest, type=kind, default=default, show_default=default is not None, help=help)
