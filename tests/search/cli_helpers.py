"""Run the command line in-process with Click's CliRunner and capture what a user would see."""

from __future__ import annotations

from dataclasses import dataclass

from click.testing import CliRunner

from search.cli.main import cli


@dataclass
class CliResult:
    code: int
    out: str
    err: str
    exception: BaseException | None = None


def run_cli(*args: object) -> CliResult:
    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="lenet-search")
    exception = None if isinstance(result.exception, SystemExit) else result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr, exception)


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    assert result.code == 2, (result.code, result.err, result.exception)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.err
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
