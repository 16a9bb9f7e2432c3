"""`lenet-search report`: a self-contained HTML page and PNGs that explain a study."""

from __future__ import annotations

import base64
import html
import warnings
from collections import Counter
from pathlib import Path

import optuna
from optuna.trial import TrialState

from search.catalog import top_trials
from search.plots import Curve, plot_bars, plot_curves, plot_history, plot_lr_schedules
from search.progress import format_params
from search.provenance import now_text


def param_importances(study: optuna.Study) -> dict[str, float] | None:
    """fANOVA importances for the time to target; None with fewer than 2 completed trials."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if len(complete) < 2:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError):  # e.g. every completed trial has the same parameters
        return None


def write_report(study: optuna.Study, out_dir: Path, top: int = 5) -> dict[str, Path]:
    """Write PNGs and index.html (images embedded, so the page stands alone) into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    target = study.user_attrs.get("target")
    best = top_trials(study, top)
    curves = [Curve.from_trial(t) for t in best]
    files: dict[str, Path] = {
        "history": plot_history(trials, out_dir / "history.png", f"{study.study_name}: optimisation history"),
        "curves": plot_curves(curves, target, out_dir / "curves.png",
                              f"validation accuracy of the top {len(curves)} trials"),  # fmt: skip
        "lr": plot_lr_schedules(curves, out_dir / "lr_schedules.png"),
    }
    outcomes = Counter(t.user_attrs.get("outcome", t.state.name.lower()) for t in trials)
    files["outcomes"] = plot_bars(dict(outcomes.most_common()), out_dir / "outcomes.png", "how trials ended", "trials")
    importances = param_importances(study)
    if importances:
        files["importances"] = plot_bars(importances, out_dir / "importances.png",
                                         "parameter importance for the time to target (fANOVA)", "importance")  # fmt: skip
    files["html"] = out_dir / "index.html"
    files["html"].write_text(_html(study, trials, best, outcomes, files))
    return files


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _html(study, trials, best, outcomes, files) -> str:
    attrs = study.user_attrs
    finished = [t for t in trials if t.state.is_finished()]
    spent = sum(t.user_attrs.get("train_seconds", 0.0) for t in finished)
    rows = "".join(
        f"<tr><td>{t.number}</td><td>{t.state.name.lower()}</td>"
        f"<td>{f'{t.value:.1f}' if t.state == TrialState.COMPLETE else '-'}</td>"
        f"<td>{t.user_attrs.get('best_val_accuracy', 0):.4f}</td><td>{t.user_attrs.get('epochs', 0):.4g}</td>"
        f"<td>{html.escape(format_params(t.params))}</td><td>{html.escape(t.user_attrs.get('reason', ''))}</td></tr>"
        for t in best
    )
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
<p>Objective: {html.escape(attrs.get('objective', 'training seconds to target'))}.
Target validation accuracy: <b>{attrs.get('target')}</b> ({html.escape(str(attrs.get('target_source', '')))}).</p>
<p>{len(trials)} trials: {html.escape(outcome_text)}. Training time spent on finished trials: {spent:.0f} s
on {html.escape(str(attrs.get('device')))} with {attrs.get('threads')} threads per worker.
Created {html.escape(str(attrs.get('created')))}; report written {now_text()}.</p>
<h2>Top trials</h2>
<table><tr><th>trial</th><th>state</th><th>seconds to target</th><th>best val</th><th>epochs</th>
<th>parameters</th><th>outcome</th></tr>{rows}</table>
{figures}
</body></html>
"""
