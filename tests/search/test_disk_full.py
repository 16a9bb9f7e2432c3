"""A full disk under export, train and report: one line naming the path, exit code 2, no partial
or temporary file, the files already there and the study intact (a real tmpfs that fills up)."""

from __future__ import annotations

import json

import optuna

from lenet.atomic import TEMP_PREFIX
from tests.search.cli_helpers import assert_one_line_error, run_cli
from tests.tmpfs import fill, small_tmpfs


def _temporaries(folder) -> list[str]:
    return [p.name for p in folder.rglob(f"{TEMP_PREFIX}*")]


def _trials(storage) -> list:
    trials = optuna.load_study(study_name="lenet5-cifar10", storage=storage).trials
    return [(t.number, t.state, t.value, t.params, t.datetime_complete) for t in trials]


def test_export_to_a_full_disk(tmp_path, finished_study):
    before = _trials(finished_study)
    with small_tmpfs(tmp_path / "disk") as disk:
        out = disk / "best.json"
        out.write_text('{"old": true}\n')
        filler = fill(disk)
        result = run_cli("export", "--storage", finished_study, "-o", out)
        assert_one_line_error(result, f"no space left on the device holding {out}")
        assert out.read_text() == '{"old": true}\n' and _temporaries(disk) == []
        assert _trials(finished_study) == before  # the study is as it was

        filler.unlink()
        assert run_cli("export", "--storage", finished_study, "-o", out).code == 0
        assert json.loads(out.read_text())["study"]["target"] == 0.6 and _temporaries(disk) == []


def test_train_and_report_to_a_full_disk(tmp_path, finished_study, tiny):
    export = tmp_path / "best.json"
    assert run_cli("export", "--storage", finished_study, "-o", export).code == 0
    with small_tmpfs(tmp_path / "disk") as disk:
        run = disk / "run"
        run.mkdir()
        (run / "metrics.json").write_text("earlier\n")
        filler = fill(disk)
        result = run_cli(*tiny.retrain_args(export), "--out", run, "--quiet")
        assert_one_line_error(result, "no space left on the device holding", str(run))
        assert sorted(p.name for p in run.iterdir()) == ["metrics.json"]  # no model.pt, no temporary
        assert (run / "metrics.json").read_text() == "earlier\n"

        pages = disk / "report"
        result = run_cli("report", "--storage", finished_study, "-o", pages)
        assert_one_line_error(result, "no space left on the device holding", str(pages))
        assert _temporaries(disk) == [] and not list(pages.glob("*.png"))

        filler.unlink()
        assert run_cli("report", "--storage", finished_study, "-o", pages).code == 0
        assert (pages / "index.html").read_text().startswith("<!doctype html>")
        assert _temporaries(disk) == []
