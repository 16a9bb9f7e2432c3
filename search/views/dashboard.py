"""optuna-dashboard on a study storage, with the study explained on its page: a note naming
the objective and target, a plotly figure of validation accuracy against training seconds
for the best trials, and a note on each trial saying how it ended."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING

import optuna
from optuna.storages import BaseStorage

from search.confirm.race import confirmation_of
from search.errors import RequestError
from search.records.study import StudyRecord, study_record
from search.records.trial import TrialResult
from search.study.queries import top_trials
from search.study.storage import opened
from search.views.confirmation import confirmation_lines
from search.views.importance import accuracy_importances
from search.views.text import clock_lines

if TYPE_CHECKING:
    import plotly.graph_objects as go

FIGURE_ID = "lenet-search-curves"  # fixed ids: annotating again replaces the figures
IMPORTANCE_ID = "lenet-search-importances"


def save_trial_note(trial: optuna.Trial, result: TrialResult, target: float, device: str) -> None:
    """A note on the trial's dashboard page: how it ended and why, against which target (the
    objective's trial note: optimize passes it in)."""
    import optuna_dashboard

    to_target = result.clock_seconds_to_target
    lines = [
        f"**Outcome**: {result.outcome}: {result.reason}",
        f"**Target** validation accuracy {target:.4f}: "
        + (f"reached after {to_target:.1f} s of training" if to_target is not None else "not reached"),
        f"Best validation accuracy {result.best_val_accuracy:.4f} after {result.epochs:.4g} epochs, "
        f"{result.measured_seconds:.1f} s of training on {device}.",
    ]
    optuna_dashboard.save_note(trial, "\n\n".join(lines))


def curves_figure(study: optuna.Study, top: int = 5) -> go.Figure:
    import plotly.graph_objects as go  # here, not at import: plotly is slow to import

    from search.views.plots import Curve

    fig = go.Figure()
    for trial in top_trials(study, top):
        c = Curve.from_trial(trial)
        fig.add_trace(go.Scatter(x=c.seconds, y=c.val_accuracy, mode="lines+markers", name=c.label))
    record = study_record(study)
    if record is not None:
        fig.add_hline(y=record.target, line_dash="dash", annotation_text=f"target {record.target:.3f}")
    fig.update_layout(
        title=f"Validation accuracy against training seconds, top {top} trials",
        xaxis_title="training seconds (evaluation excluded)",
        yaxis_title="validation accuracy",
    )
    return fig


def study_note(study: optuna.Study, record: StudyRecord) -> str:
    confirmed = confirmation_lines(confirmation_of(study))
    return "\n\n".join(
        [
            *(
                ["**Confirmed winner**:\n\n" + "\n".join(f"- {line.strip()}" for line in confirmed)]
                if confirmed
                else []
            ),
            "**Clock**: " + " ".join(clock_lines(record)),
            f"## {study.study_name}",
            f"**Objective** (minimised): {record.objective}.",
            f"**Target** validation accuracy: **{record.target}** ({record.target_source}).",
            f"**Intermediate values**: {record.intermediate_values}.",
            f"Timed on {record.device}{_hardware_text(record)} with {record.threads} torch threads per worker; "
            f"created {record.created}.",
            f"**Objective value**: training seconds until the target, in the study's {record.clock} clock"
            + (
                " (each trial's optimizer steps priced by the step costs measured when the study was created; "
                "`studies show` lists them)"
                if record.clock == "calibrated"
                else ""
            )
            + ". Only trials that reached the target have a value: a pruned trial has none, so the history "
            "plot shows no trial that missed the target as faster than the best.",
            "**Importances**: the built-in panel rests on the completed trials only; the figure "
            "'Parameter importance for validation accuracy by T s' below rests on every trial that trained "
            "for T seconds of the study's clock.",
            "Each trial's user attributes hold its outcome and reason (pruning rule), full learning curve "
            "(`curve`, with `clock_seconds`), config, seed, device and library versions.",
        ]
    )


def _hardware_text(record: StudyRecord) -> str:
    h = record.hardware
    if not h:
        return ""
    versions = f", CUDA {h.get('cuda')}, cuDNN {h.get('cudnn')}" if h.get("type") == "cuda" else ""
    return f" ({h.get('count')} x {h.get('name')}{versions})"


def annotate(study: optuna.Study) -> None:
    """Attach the note and the figure to the study (lenet-search studies only)."""
    record = study_record(study)
    if record is None:
        return
    import optuna_dashboard

    optuna_dashboard.save_note(study, study_note(study, record))
    optuna_dashboard.save_plotly_graph_object(study, curves_figure(study), graph_object_id=FIGURE_ID)
    figure = importance_figure(study)
    if figure is not None:
        optuna_dashboard.save_plotly_graph_object(study, figure, graph_object_id=IMPORTANCE_ID)


def importance_figure(study: optuna.Study) -> go.Figure | None:
    """Parameter importances over every trial that trained long enough (search/importance.py):
    the dashboard's own panel rests on the completed trials alone."""
    import plotly.graph_objects as go

    importances = accuracy_importances(study.get_trials(deepcopy=False))
    if importances is None:
        return None
    names = list(importances.values)[::-1]
    fig = go.Figure(go.Bar(x=[importances.values[n] for n in names], y=names, orientation="h"))
    fig.update_layout(title=f"Parameter {importances.title}", xaxis_title="importance (fANOVA)")
    return fig


def exposure_warning(host: str, allow_remote: bool) -> str | None:
    """None where only this machine can reach `host`; else a refusal, or with `allow_remote`
    the warning to show: optuna-dashboard has no authentication, and its API deletes studies."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost: it may resolve to any interface
        loopback = False
    if loopback:
        return None
    risk = (
        f"optuna-dashboard has no authentication: on {host} anyone who reaches the port can read, "
        "change and delete the studies"
    )
    if not allow_remote:
        raise RequestError(
            f"{risk}; serve on 127.0.0.1 behind a proxy with authentication (docs/reliability.md), "
            "or allow it explicitly",
            subject="host",
        )
    return risk


def serve(
    storage_url: str,
    host: str,
    port: int,
    allow_remote: bool = False,
    on_ready: Callable[[str | None], None] | None = None,
) -> None:
    """Annotate every study, then serve the dashboard until interrupted; `on_ready` gets the
    exposure warning, if any (a host other than loopback is refused unless `allow_remote`)."""
    import optuna_dashboard

    warning = exposure_warning(host, allow_remote)
    with opened(storage_url) as storage:
        annotate_all(storage)
        if on_ready is not None:
            on_ready(warning)
        optuna_dashboard.run_server(storage, host=host, port=port)


def annotate_all(storage: BaseStorage) -> None:
    for summary in storage.get_all_studies():
        annotate(optuna.load_study(study_name=summary.study_name, storage=storage))
