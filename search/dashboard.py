"""optuna-dashboard on a study storage, with the study explained on its page: a note naming
the objective and target, and a plotly figure of validation accuracy against training
seconds for the best trials."""

from __future__ import annotations

import optuna
import plotly.graph_objects as go
from optuna.storages import RDBStorage

from search.catalog import top_trials
from search.plots import Curve

FIGURE_ID = "lenet-search-curves"  # a fixed id: annotating again replaces the figure


def curves_figure(study: optuna.Study, top: int = 5) -> go.Figure:
    fig = go.Figure()
    for trial in top_trials(study, top):
        c = Curve.from_trial(trial)
        fig.add_trace(go.Scatter(x=c.seconds, y=c.val_accuracy, mode="lines+markers", name=c.label))
    target = study.user_attrs.get("target")
    if target is not None:
        fig.add_hline(y=target, line_dash="dash", annotation_text=f"target {target:.3f}")
    fig.update_layout(
        title=f"Validation accuracy against training seconds, top {top} trials",
        xaxis_title="training seconds (evaluation excluded)",
        yaxis_title="validation accuracy",
    )
    return fig


def study_note(study: optuna.Study) -> str:
    a = study.user_attrs
    return "\n\n".join(
        [
            f"## {study.study_name}",
            f"**Objective** (minimised): {a.get('objective', 'training seconds to target')}.",
            f"**Target** validation accuracy: **{a.get('target')}** ({a.get('target_source', '')}).",
            f"**Intermediate values**: {a.get('intermediate_values', 'validation error per evaluation')}.",
            f"Timed on {a.get('device')} with {a.get('threads')} torch threads per worker; created {a.get('created')}.",
            "Each trial's user attributes hold its outcome and reason (pruning rule), full learning curve "
            "(`curve`), config, seed, device and library versions.",
        ]
    )


def annotate(study: optuna.Study) -> None:
    """Attach the note and the figure to the study (lenet-search studies only)."""
    if "target" not in study.user_attrs:
        return
    import optuna_dashboard

    optuna_dashboard.save_note(study, study_note(study))
    optuna_dashboard.save_plotly_graph_object(study, curves_figure(study), graph_object_id=FIGURE_ID)


def serve(storage: RDBStorage, host: str, port: int) -> None:
    """Annotate every study, then serve the dashboard until interrupted."""
    import optuna_dashboard

    for summary in storage.get_all_studies():
        annotate(optuna.load_study(study_name=summary.study_name, storage=storage))
    optuna_dashboard.run_server(storage, host=host, port=port)
