"""The command group, and the one place where exceptions become what the user sees: a refusal
(lenet.errors.InputError) one line with exit code 2, naming the flag to change; anything else
a bug, one line that says so (exit code 1); `--debug` lets the traceback through."""

from __future__ import annotations

from typing import Any

import click

from lenet.errors import InputError

_HELP_ERRORS = tuple(getattr(click.exceptions, n) for n in ("NoArgsIsHelpError",) if hasattr(click.exceptions, n))


class Refused(click.ClickException):
    """Input the user can fix: one line, exit code 2."""

    exit_code = 2


class Bug(click.ClickException):
    """An exception no refusal explains: a bug in lenet-search."""

    exit_code = 1


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _flag(command: click.Command | None, subject: str | None) -> str | None:
    """The flag of `command` (or of its subcommands) whose parameter is `subject`."""
    if command is None or subject is None:
        return None
    commands = [command, *getattr(command, "commands", {}).values()]
    for param in (p for c in commands for p in c.params):
        if param.name == subject and isinstance(param, click.Option):
            return max(param.opts, key=len)
    return None


class LenetGroup(click.Group):
    """Turns library exceptions into Click's one-line errors, in this one place."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except _HELP_ERRORS:
            raise
        except click.UsageError as exc:
            raise Refused(exc.format_message()) from exc  # one line, without the usage block

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _HELP_ERRORS:
            raise
        except click.UsageError as exc:
            raise Refused(exc.format_message()) from exc
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except InputError as exc:
            if ctx.params.get("debug"):
                raise
            invoked = self.get_command(ctx, ctx.invoked_subcommand) if ctx.invoked_subcommand else None
            flag = _flag(invoked, exc.subject)
            raise Refused(_first_line(exc) + (f" ({flag})" if flag else "")) from exc
        except Exception as exc:  # not KeyboardInterrupt or SystemExit: those are not bugs
            if ctx.params.get("debug"):
                raise
            detail = str(exc).splitlines()[0] if str(exc) else ""
            raise Bug(
                f"internal error, a bug in lenet-search: {type(exc).__name__}: {detail} "
                "(run again with --debug to see the traceback)"
            ) from exc


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
