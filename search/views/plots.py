"""Figures for reports and training runs (matplotlib, written as PNG files)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
from optuna.trial import FrozenTrial, TrialState  # noqa: E402

from lenet.atomic import atomic_write  # noqa: E402
from lenet.curve import EvalRecord  # noqa: E402
from search.records.keys import (  # noqa: E402
    POINT_EPOCH,
    POINT_LR,
    POINT_TRAIN_ACCURACY,
    POINT_TRAIN_SECONDS,
    POINT_VAL_ACCURACY,
)
from search.records.trial import CurvePoint, TrialRecord  # noqa: E402
from search.study.machines import Comparison  # noqa: E402
from search.views.names import clock_name  # noqa: E402


@dataclass(frozen=True)
class Curve:
    """One learning curve: validation accuracy against training seconds."""

    label: str
    seconds: list[float]
    val_accuracy: list[float]
    train_accuracy: list[float] | None = None
    epochs: list[float] | None = None
    lr: list[float] | None = None

    @classmethod
    def from_points(cls, label: str, points: Sequence[CurvePoint]) -> Curve:
        """A trial's stored curve, against measured training seconds."""
        return cls(
            label=label,
            seconds=[p[POINT_TRAIN_SECONDS] for p in points],
            val_accuracy=[p[POINT_VAL_ACCURACY] for p in points],
            train_accuracy=[p[POINT_TRAIN_ACCURACY] for p in points],
            epochs=[p[POINT_EPOCH] for p in points],
            lr=[p[POINT_LR] for p in points],
        )

    @classmethod
    def from_records(cls, label: str, records: Sequence[EvalRecord]) -> Curve:
        """A training run's curve, against measured training seconds."""
        return cls(
            label=label,
            seconds=[r.train_seconds for r in records],
            val_accuracy=[r.val_accuracy for r in records],
            train_accuracy=[r.train_accuracy for r in records],
            epochs=[r.epoch for r in records],
            lr=[r.lr for r in records],
        )

    @classmethod
    def from_trial(cls, trial: FrozenTrial) -> Curve:
        p = trial.params
        label = f"#{trial.number}"
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            label += f" {trial.value:.0f}s"
        if p:
            label += f" (bs {p.get('batch_size', '?')}, lr {p.get('lr', float('nan')):.3g})"
        return cls.from_points(label, TrialRecord.of(trial).curve)


def _labelled(
    fig: plt.Figure,
    ax: plt.Axes,
    path: Path,
    xlabel: str,
    ylabel: str,
    title: str,
    grid: str = "major",
    **legend: object,
) -> Path:
    """Label the axes, draw the grid and legend, and save."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which=grid)
    ax.legend(**{"fontsize": 8, **legend})
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    """Written atomically (a full disk is one line, and leaves no half figure)."""
    try:
        fig.tight_layout()
        atomic_write(path, lambda fh: fig.savefig(fh, format=path.suffix.lstrip(".") or "png", dpi=110))
    finally:
        plt.close(fig)
    return path


def plot_curves(
    curves: Sequence[Curve], target: float | None, path: Path, title: str, show_train: bool = False
) -> Path:
    """Validation accuracy (and optionally training accuracy) against training seconds."""
    fig, ax = plt.subplots(figsize=(8, 5))
    for c in curves:
        (line,) = ax.plot(c.seconds, c.val_accuracy, marker="o", markersize=3, label=f"{c.label} val")
        if show_train and c.train_accuracy:
            ax.plot(c.seconds, c.train_accuracy, linestyle=":", color=line.get_color(), label=f"{c.label} train")
    if target is not None:
        ax.axhline(target, color="black", linestyle="--", linewidth=1, label=f"target {target:.3f}")
    return _labelled(fig, ax, path, "training seconds (evaluation excluded)", "accuracy", title, loc="lower right")


def plot_history(trials: Sequence[FrozenTrial], path: Path, title: str) -> Path:
    """Time to target per trial (completed trials), the best so far, and where trials were pruned."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    done = [(t.number, t.value) for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    pruned = [t.number for t in trials if t.state == TrialState.PRUNED]
    if done:
        xs, ys = zip(*done)
        ax.scatter(xs, ys, s=18, label="reached the target")
        best, best_line = float("inf"), []
        for t in sorted(trials, key=lambda t: t.number):
            if t.state == TrialState.COMPLETE and t.value is not None:
                best = min(best, t.value)
            best_line.append((t.number, best if best < float("inf") else None))
        bx = [n for n, b in best_line if b is not None]
        ax.step(bx, [b for _, b in best_line if b is not None], where="post", color="tab:red", label="best so far")
    if pruned:
        top = ax.get_ylim()[1] if done else 1.0
        ax.scatter(pruned, [top] * len(pruned), marker="|", color="grey", label=f"pruned ({len(pruned)})")
    return _labelled(fig, ax, path, "trial", "training seconds to target", title)


def plot_lr_schedules(curves: Sequence[Curve], path: Path) -> Path:
    """Learning rate in force at each evaluation, per trial (StepLR's staircase)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for c in curves:
        if c.lr and c.epochs:
            ax.step(c.epochs, c.lr, where="pre", marker=".", label=c.label)
    ax.set_yscale("log")
    return _labelled(fig, ax, path, "epoch", "learning rate", "learning-rate schedule of the top trials", "both")


def plot_bars(values: dict[str, float], path: Path, title: str, xlabel: str) -> Path:
    fig, ax = plt.subplots(figsize=(7, 0.5 * max(3, len(values)) + 1))
    names = list(values)[::-1]
    ax.barh(names, [values[n] for n in names])
    for y, n in enumerate(names):
        ax.text(values[n], y, f" {values[n]:.3g}", va="center", fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return _save(fig, path)


def plot_machines(comparison: Comparison, path: Path) -> Path:
    """Left: the fastest time to target against batch size, one line per machine (in its own
    clock), each machine's winner starred. Right: each winner priced in every machine's clock
    (hatched: a lower bound), its confirmed median on its own machine as a bar's dot."""
    ms = comparison.machines
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [1, 1.2]})
    colors = [f"C{i}" for i in range(len(ms))]
    for i, m in enumerate(ms):
        sizes = sorted(m.best_by_batch)
        left.plot(
            sizes,
            [m.best_by_batch[b] for b in sizes],
            marker="o",
            color=colors[i],
            label=f"{i + 1}: {m.name}, {clock_name(m.clock)}",
        )
        w = m.winner
        if w.config is not None and w.clock_seconds_to_target is not None:
            left.plot([w.config.batch_size], [w.clock_seconds_to_target], marker="*", markersize=16, color=colors[i])
    left.set_xscale("log", base=2)
    left.set_xlabel("batch size")
    left.set_ylabel("fastest seconds to target (each machine's clock)")
    left.set_title("Fastest to the target by batch size (star: winner)")
    left.grid(alpha=0.3, which="both")
    left.legend(fontsize=7)
    width = 0.8 / len(ms)
    for i, (m, row) in enumerate(zip(ms, comparison.priced)):
        for j, p in enumerate(row):
            if p is None or math.isinf(p.seconds):
                continue
            x = j + (i - (len(ms) - 1) / 2) * width
            bar = right.bar(x, p.seconds, width, color=colors[i], hatch=None if p.exact else "//", alpha=0.85)
            if i == j and m.confirmed_median is not None:
                right.plot([x], [m.confirmed_median], marker="o", color="black", markersize=4)
            if j == 0:
                bar.set_label(f"winner of {i + 1}: trial {m.winner.number}")
    right.set_xticks(range(len(ms)), [f"{j + 1}: {clock_name(m.clock)}" for j, m in enumerate(ms)], fontsize=7)
    plt.setp(right.get_xticklabels(), rotation=12, ha="right")
    right.set_ylabel("seconds to target in that machine's clock")
    right.set_title("Each winner priced on every machine (dot: confirmed median)")
    right.grid(alpha=0.3, axis="y")
    right.legend(fontsize=7)
    return _save(fig, path)
