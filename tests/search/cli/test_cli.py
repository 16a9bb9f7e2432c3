"""The command line through its real entry point, on synthetic data."""

import json

import click
import pytest
import torch

from lenet.checkpoint import load_checkpoint
from lenet.errors import DataError
from search.cli.main import cli
from tests.search.cli_helpers import assert_one_line_error, run_cli

TRAIN = ["--batch-size", "64", "--lr", "0.01", "--step-size", "2", "--gamma", "0.5", "--epochs", "3", "--quiet"]


def _commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield prefix + (name,), command
        if isinstance(command, click.Group):
            yield from _commands(command, prefix + (name,))


@pytest.mark.parametrize("path", [p for p, _ in _commands(cli)], ids=lambda p: " ".join(p))
def test_every_command_has_help_with_an_example(path):
    result = run_cli(*path, "--help")
    assert result.code == 0
    assert "Example" in result.out and f"lenet-search {path[0]}" in result.out


def test_top_level_help_lists_commands():
    result = run_cli("--help")
    assert result.code == 0
    for name in cli.commands:
        assert name in result.out


def test_train_writes_metrics_and_checkpoint(tmp_path, synthetic_archive):
    out = tmp_path / "run"
    result = run_cli("train", "--data", synthetic_archive, "--val-size", "400", *TRAIN, "--target", "0.6", "--out", out)
    assert result.code == 0, result.err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and len(metrics["history"]) == 3
    assert metrics["test_accuracy"] > 0.8
    assert metrics["seconds_to_target"] is not None and metrics["seconds_to_target"] <= metrics["train_seconds"]
    assert metrics["config"]["batch_size"] == 64 and metrics["config"]["lr"] == 0.01
    assert metrics["data"]["checksum"] and torch.__version__.startswith(metrics["versions"]["torch"])
    assert f"test accuracy: {metrics['test_accuracy']:.4f}" in result.out
    assert "target 0.6000: reached after" in result.out
    model, config, blob = load_checkpoint(out / "model.pt")
    assert config.batch_size == 64 and len(blob["mean"]) == 3


def test_train_json_prints_instead_of_writing(tmp_path, synthetic_archive, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("train", "--data", synthetic_archive, "--val-size", "400", *TRAIN, "--json")
    assert result.code == 0, result.err
    metrics = json.loads(result.out)
    assert {"test_accuracy", "train_seconds", "epochs", "history"} <= set(metrics)
    assert not (tmp_path / "studies").exists()


def test_train_from_config_file_with_flag_override(tmp_path, synthetic_archive):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("lr = 0.01\nbatch_size = 128\nmax_epochs = 2\nstep_size = 1\ngamma = 0.5\n")
    result = run_cli(
        "train", "--config", cfg, "--batch-size", "64", "--data", synthetic_archive, "--val-size", "400", "--json"
    )
    assert result.code == 0, result.err
    metrics = json.loads(result.out)
    assert metrics["config"]["batch_size"] == 64  # the flag wins
    assert metrics["config"]["max_epochs"] == 2 and metrics["config"]["step_size"] == 1  # the file's
    assert [round(r["lr"], 6) for r in metrics["history"]] == [0.01, 0.005]


def test_bench_json(synthetic_archive):
    result = run_cli(
        "bench",
        "--data",
        synthetic_archive,
        "--val-size",
        "400",
        "--batch-sizes",
        "64,256",
        "--naive-batch-sizes",
        "64",
        "--epochs",
        "1",
        "--workers",
        "0",
        "--json",
    )
    assert result.code == 0, result.err
    payload = json.loads(result.out)
    rows = {(r["pipeline"], r["batch_size"]): r for r in payload["rows"]}
    assert set(rows) == {("engine", 64), ("engine", 256), ("naive", 64)}
    assert rows[("engine", 64)]["speedup"] == pytest.approx(
        rows[("naive", 64)]["epoch_seconds"] / rows[("engine", 64)]["epoch_seconds"]
    )


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["--lr", "-0.1"], ["lr must be a positive number"]),
        (["--momentum", "1.5"], ["momentum must be in [0, 1)"]),
        (["--batch-size", "zero"], ["'zero' is not a valid integer"]),
        (["--target", "1.5"], ["--target", "0<x<1"]),
        (["--device", "tpu"], ["unknown device 'tpu'"]),
        (["--no-such-flag"], ["No such option '--no-such-flag'"]),
    ],
)
def test_train_bad_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path, synthetic_archive, monkeypatch, args, fragments
):
    monkeypatch.chdir(tmp_path)
    result = run_cli("train", "--data", synthetic_archive, "--quiet", *args)
    assert_one_line_error(result, *fragments)
    assert list(tmp_path.iterdir()) == []


def test_missing_data_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("train", "--data", tmp_path / "nowhere.tar.gz", "--quiet")
    assert_one_line_error(result, "nowhere.tar.gz does not exist")
    assert list(tmp_path.iterdir()) == []


def test_corrupt_archive(tmp_path):
    bad = tmp_path / "broken.tar.gz"
    bad.write_bytes(b"garbage" * 100)
    assert_one_line_error(run_cli("train", "--data", bad, "--quiet"), "broken.tar.gz is corrupt")


def test_config_file_errors(tmp_path, synthetic_archive):
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("lr = = 1")
    assert_one_line_error(run_cli("train", "--config", bad_toml), "not valid TOML")
    missing_fields = tmp_path / "export.json"
    missing_fields.write_text(json.dumps({"config": {"lr": 0.1}}))
    assert_one_line_error(run_cli("train", "--config", missing_fields), "lacks field(s)", "momentum")
    unknown = tmp_path / "cfg.json"
    unknown.write_text(json.dumps({"learning_rate": 0.1}))
    assert_one_line_error(run_cli("train", "--config", unknown), "unknown training config field")
    assert_one_line_error(run_cli("train", "--config", tmp_path / "none.json"), "cannot read config file")


def test_debug_shows_the_traceback(tmp_path):
    result = run_cli("--debug", "train", "--data", tmp_path / "nowhere", "--quiet")
    assert isinstance(result.exception, DataError) and result.code == 1


def test_a_bug_says_so_in_one_line_with_exit_code_1(tmp_path, monkeypatch):
    import search.study.catalog

    def broken(storage_url):
        raise KeyError("best_value")

    monkeypatch.setattr(search.study.catalog, "list_studies", broken)
    result = run_cli("studies", "--storage", f"sqlite:///{tmp_path}/s.db")
    assert result.code == 1 and result.code != 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    assert lines[0].startswith("Error: internal error, a bug in lenet-search: KeyError: 'best_value'")
    assert "--debug" in lines[0]
    # With --debug the exception itself comes out, for its traceback.
    result = run_cli("--debug", "studies", "--storage", f"sqlite:///{tmp_path}/s.db")
    assert isinstance(result.exception, KeyError)


def test_a_plain_value_error_from_the_library_is_a_bug_not_bad_input(tmp_path, monkeypatch):
    import search.retrain.export

    def broken(*args):
        raise ValueError("could not convert")

    monkeypatch.setattr(search.retrain.export, "export_trial", broken)
    result = run_cli("export", "--storage", f"sqlite:///{tmp_path}/s.db", "-o", tmp_path / "x.json")
    assert result.code == 1 and "a bug in lenet-search: ValueError: could not convert" in result.err


def test_the_console_script_entry_point(tmp_path):
    # The installed `lenet-search` calls search.cli.main:main; one real process shows its exit codes.
    import subprocess
    import sys

    ok = subprocess.run([sys.executable, "-m", "search.cli", "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "optimize" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "search.cli", "train", "--lr", "-1", "--data", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert (
        bad.returncode == 2 and bad.stderr.strip().startswith("Error: ") and len(bad.stderr.strip().splitlines()) == 1
    )


def test_starting_the_command_line_leaves_torchvision_and_scikit_learn_unimported():
    # They take 1.4 s and 0.8 s to import (docs/engine.md, "Start-up"): only the naive baseline of
    # `bench` and the data split need them, so `--help`, `studies` or `export` should not wait.
    import subprocess
    import sys

    code = "import sys, search.cli.main; print(sorted(m for m in ('torchvision', 'sklearn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
