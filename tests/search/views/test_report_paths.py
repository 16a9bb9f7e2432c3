"""`lenet-search report` names its default folder after the study: a study name from a shared
storage (`../../evil`, `/etc`, `x/../../../evil`) cannot make it write outside that folder."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

import search.views.report as report
from search.errors import StudyError
from search.records.trial import CURVE
from search.views.report import default_report_dir, report_dir_name
from tests.search.cli_helpers import assert_one_line_error, run_cli
from tests.synthetic import eval_record

HOSTILE = ["../../evil", "x/../../../evil", "/tmp/evil", "..", ".", "a\\..\\..\\evil", "a\0b", "evil\n.png", " "]
REPORT_FILES = {"history.png", "curves.png", "lr_schedules.png", "outcomes.png", "index.html"}


def _add_study(storage: str, name: str) -> None:
    """A study of four trials (two complete, two pruned) with learning curves, as a search leaves."""
    study = optuna.create_study(study_name=name, storage=storage)
    dist = {"lr": FloatDistribution(0.001, 0.3, log=True)}
    for i in range(4):
        curve = [eval_record(s, s, 0.1 * s, step=s).to_dict() for s in range(1, 4 + i)]
        done = i % 2 == 1
        study.add_trial(
            create_trial(
                state=TrialState.COMPLETE if done else TrialState.PRUNED,
                value=5.0 + i if done else None,
                params={"lr": 0.01 * (i + 1)},
                distributions=dist,
                user_attrs={CURVE: curve},
            )
        )


def _files(root):
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """The command's working folder, one below tmp_path, so that an escape shows in tmp_path."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.mark.parametrize("name", HOSTILE + ["lenet5-cifar10", "a" * 300, "étude_1.2"])
def test_the_folder_name_is_one_safe_component(name):
    folder = report_dir_name(name)
    assert folder.startswith("report-") and folder not in (".", "..")
    assert "/" not in folder and "\\" not in folder and "\0" not in folder and "\n" not in folder
    assert len(folder.encode()) <= 255
    assert default_report_dir(name).parent == report.REPORTS_DIR


def test_a_safe_name_keeps_its_folder_and_distinct_names_keep_distinct_folders():
    assert report_dir_name("lenet5-cifar10") == "report-lenet5-cifar10"  # as before
    names = ["a/b", "a-b", "a b", "a\\b", "../a-b", "a" * 300, "a" * 301, "..", ".", " "]
    assert len({report_dir_name(n) for n in names}) == len(names)
    assert report_dir_name("../../evil").startswith("report-evil-")


def test_a_folder_outside_the_reports_folder_is_refused(monkeypatch, tmp_path):
    # report_dir_name cannot give such a folder; the check stands behind it
    monkeypatch.setattr(report, "report_dir_name", lambda name: "../escaped")
    with pytest.raises(StudyError, match=r"study 'x': its report folder .* lies outside .*; give one with -o") as exc:
        default_report_dir("x", tmp_path / "studies")
    assert exc.value.subject == "study_name"


@pytest.mark.parametrize("name", ["../../evil", "x/../../../evil", "/tmp/evil-report"])
def test_report_of_a_hostile_name_writes_inside_the_reports_folder_only(tmp_path, workdir, name):
    storage = f"sqlite:///{tmp_path}/s.db"
    _add_study(storage, name)
    before = _files(tmp_path)
    result = run_cli("report", "--study", name, "--storage", storage)
    assert result.code == 0, (result.err, result.exception)
    folder = f"work/studies/{report_dir_name(name)}"
    assert _files(tmp_path) - before == {f"{folder}/{f}" for f in REPORT_FILES}
    assert f"html: studies/{report_dir_name(name)}/index.html" in result.out
    page = (tmp_path / folder / "index.html").read_text()
    assert f"<h1>Study {name}</h1>" in page  # the name itself, escaped where it needs to be, in the page
    assert not (tmp_path / "evil").exists() and not (tmp_path.parent / "evil").exists()


def test_report_with_o_writes_where_it_is_told_whatever_the_name(tmp_path, workdir):
    storage = f"sqlite:///{tmp_path}/s.db"
    _add_study(storage, "../../evil")
    result = run_cli("report", "--study", "../../evil", "--storage", storage, "-o", workdir / "out")
    assert result.code == 0, (result.err, result.exception)
    assert _files(workdir) == {f"out/{f}" for f in REPORT_FILES}


def test_an_unknown_hostile_name_is_refused_with_nothing_written(tmp_path, workdir):
    storage = f"sqlite:///{tmp_path}/s.db"
    _add_study(storage, "real")
    before = _files(tmp_path)
    assert_one_line_error(
        run_cli("report", "--study", "../../evil", "--storage", storage), "no study named '../../evil'"
    )
    assert _files(tmp_path) == before and not (workdir / "studies").exists()
