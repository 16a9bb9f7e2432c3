"""`lenet-search report`: a self-contained HTML page and PNGs that explain a study."""

from __future__ import annotations

import base64
import hashlib
import html
import os
import re
from collections import Counter
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

from lenet.atomic import atomic_write
from search.clock.agreement import agreement_lines, clock_agreement
from search.confirm.race import confirmation_of
from search.errors import StudyError
from search.records.provenance import now_text
from search.records.study import StudyRecord, study_record
from search.records.trial import TrialRecord
from search.study.opening import load_existing
from search.study.queries import top_trials
from search.study.storage import opened
from search.views.confirmation import confirmation_lines
from search.views.importance import accuracy_importances
from search.views.plots import Curve, plot_bars, plot_curves, plot_history, plot_lr_schedules
from search.views.progress import format_params
from search.views.text import clock_lines

REPORTS_DIR = Path("studies")  # where a report goes unless a folder is given
NAME_MAX_CHARS = 100  # of a study name kept in its folder's name (file names stop at 255 bytes)
_UNSAFE = re.compile(r"[^\w.-]+")  # what a file name keeps of a study name: letters, digits, _ . -


def report_dir_name(study_name: str) -> str:
    """`report-<study name>` as one safe file name: the name's letters, digits and `_.-`, runs of
    anything else (`/`, `\\`, spaces, control characters) a single `-`; a name that changed on
    the way (or was cut short) gets 8 hex digits of its hash, so that no two names share a folder."""
    slug = _UNSAFE.sub("-", study_name).strip(".-")[:NAME_MAX_CHARS]
    if slug == study_name:
        return f"report-{slug}"
    digest = hashlib.sha256(study_name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"report-{slug}-{digest}" if slug else f"report-{digest}"


def default_report_dir(study_name: str, reports_dir: Path = REPORTS_DIR) -> Path:
    """The folder a study's report goes to unless one is given: a folder of `reports_dir` itself,
    whatever the name holds (`../`, `/`, ...). Checked on the normalised path, not the resolved
    one: a symlink the user made there is theirs to make, and a study name cannot make one."""
    out_dir = reports_dir / report_dir_name(study_name)
    if Path(os.path.normpath(out_dir)).parent != Path(os.path.normpath(reports_dir)):
        raise StudyError(
            f"study {study_name!r}: its report folder {out_dir} lies outside {reports_dir}; give one with -o",
            subject="study_name",
        )
    return out_dir


def report_study(storage_url: str, study_name: str, out_dir: Path | None = None, top: int = 5) -> dict[str, Path]:
    """Write the report of study `study_name` into `out_dir` (default_report_dir(study_name) when
    None); returns the files by kind. Nothing is written for a study that is not there."""
    with opened(storage_url) as storage:
        study = load_existing(storage, study_name)
        return write_report(study, default_report_dir(study_name) if out_dir is None else out_dir, top)


def write_report(study: optuna.Study, out_dir: Path, top: int = 5) -> dict[str, Path]:
    """Write PNGs and index.html (images embedded, so the page stands alone) into out_dir, under
    fixed file names: the study's name appears in titles (escaped), never in a path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    record = study_record(study)
    target = record.target if record else None
    best = top_trials(study, top)
    curves = [Curve.from_trial(t) for t in best]
    files: dict[str, Path] = {
        "history": plot_history(trials, out_dir / "history.png", f"{study.study_name}: optimisation history"),
        "curves": plot_curves(
            curves, target, out_dir / "curves.png", f"validation accuracy of the top {len(curves)} trials"
        ),
        "lr": plot_lr_schedules(curves, out_dir / "lr_schedules.png"),
    }
    outcomes = Counter(TrialRecord.of(t).outcome or t.state.name.lower() for t in trials)
    files["outcomes"] = plot_bars(dict(outcomes.most_common()), out_dir / "outcomes.png", "how trials ended", "trials")
    importances = accuracy_importances(trials)
    if importances:
        files["importances"] = plot_bars(
            importances.values, out_dir / "importances.png", f"parameter {importances.title}, fANOVA", "importance"
        )
    files["html"] = out_dir / "index.html"
    page = _html(study, record, trials, best, outcomes, files).encode()
    atomic_write(files["html"], lambda fh: fh.write(page))
    return files


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _row(r: TrialRecord) -> str:
    return (
        f"<tr><td>{r.number}</td><td>{r.state.name.lower()}</td>"
        f"<td>{f'{r.value:.1f}' if r.value is not None else '-'}</td>"
        f"<td>{r.best_val_accuracy or 0:.4f}</td><td>{r.epochs:.4g}</td>"
        f"<td>{html.escape(format_params(r.params))}</td><td>{html.escape(r.reason)}</td></tr>"
    )


def _html(
    study: optuna.Study,
    record: StudyRecord | None,
    trials: list[FrozenTrial],
    best: list[FrozenTrial],
    outcomes: Counter[str],
    files: dict[str, Path],
) -> str:
    finished = [t for t in trials if t.state.is_finished()]
    spent = sum(TrialRecord.of(t).measured_seconds for t in finished)
    rows = "".join(_row(TrialRecord.of(t)) for t in best)
    confirmed = "".join(f"<li>{html.escape(line.strip())}</li>" for line in confirmation_lines(confirmation_of(study)))
    clock = "".join(
        f"<li>{html.escape(line)}</li>"
        for line in clock_lines(record) + agreement_lines(clock_agreement(map(TrialRecord.of, trials)))
    )
    objective = record.objective if record else "training seconds to target"
    source = html.escape(record.target_source if record else "")
    none_confirmed = "<li>none (optimize --confirm 0, or the search did not finish)</li>"
    sections = [
        ("Optimisation history", "history"),
        ("Learning curves of the top trials", "curves"),
        ("Learning-rate schedules", "lr"),
        ("Parameter importances", "importances"),
        ("How trials ended", "outcomes"),
    ]
    figures = "".join(f"<h2>{title}</h2>{_img(files[key], title)}" for title, key in sections if key in files)
    outcome_text = ", ".join(f"{n} {k}" for k, n in outcomes.most_common())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(study.study_name)}: lenet-search report</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto;padding:0 1em}}img{{max-width:100%}}
table{{border-collapse:collapse;font-size:90%}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:left}}</style>
</head><body>
<h1>Study {html.escape(study.study_name)}</h1>
<p>Objective: {html.escape(objective)}.
Target validation accuracy: <b>{record.target if record else None}</b> ({source}).</p>
<p>{len(trials)} trials: {html.escape(outcome_text)}. Training time spent on finished trials: {spent:.0f} s
on {html.escape(str(record.device if record else None))} with {record.threads if record else None} threads per worker.
Created {html.escape(str(record.created if record else None))}; report written {now_text()}.</p>
<h2>The clock</h2><ul>{clock}</ul>
<h2>Confirmation on fresh seeds</h2><ul>{confirmed or none_confirmed}</ul>
<h2>Top trials</h2>
<table><tr><th>trial</th><th>state</th><th>seconds to target</th><th>best val</th><th>epochs</th>
<th>parameters</th><th>outcome</th></tr>{rows}</table>
{figures}
</body></html>
"""
