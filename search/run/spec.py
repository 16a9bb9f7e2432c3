"""What a run of the search is asked for, and what each worker needs to join it: plain data,
importing nothing of the run layer, so that any layer (and a worker process) can hold it.

`OptimizeRequest`'s field metadata carries each option's help text (lenet.config.option), as
`TrainConfig`'s does, so the command line derives its flags from this one definition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch

from lenet.config import option
from lenet.data import DEFAULT_VAL_SIZE
from lenet.device import Placement, accelerator_count, cpu_count, worker_device
from search.confirm.race import DEFAULT_SEEDS, DEFAULT_TOP
from search.pruning.factory import PRUNERS
from search.records.study import CLOCK_KINDS
from search.records.trial import TrialResult
from search.sampling.factory import SAMPLERS
from search.space import DEFAULT_EVALS_PER_EPOCH, DEFAULT_MAX_EPOCHS, SearchSpace
from search.study.opening import DEFAULT_STUDY
from search.study.storage import DEFAULT_STORAGE
from search.target import DEFAULT_TARGET


@dataclass(frozen=True)
class OptimizeRequest:
    """What `lenet-search optimize` was asked for."""

    n_trials: int = option(
        100,
        "The study's total of finished (complete + pruned) trials, not N more: rerunning after an interruption "
        "runs only the rest, and workers on one storage share the count.",
        flag="--trials",
        min=1,
    )
    patience: int | None = option(
        None,
        "Stop the search early once this many trials in a row (in the schedule's order) have not improved the "
        "best time to target by 1 %; the confirmation follows as usual. [default: off: run all --trials]",
        min=1,
    )
    study_name: str = option(DEFAULT_STUDY, "Study name.", flag="--study")
    storage_url: str = option(
        DEFAULT_STORAGE,
        "Optuna RDB storage URL: sqlite:///FILE, postgresql://USER@HOST/DB, mysql://... Env: LENET_STORAGE.",
        flag="--storage",
        env="LENET_STORAGE",
    )
    data: str | None = option(None, "CIFAR-10 source (see `train --help`).", shared=True)
    device: str = option("auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps.", shared=True)
    max_epochs: int | None = option(
        None, f"Epoch budget per trial. [default: the --space file's, else {DEFAULT_MAX_EPOCHS}]", min=1
    )
    evals_per_epoch: int | None = option(
        None,
        "Validation evaluations per epoch: where time to target is measured and the pruner decides. "
        f"[default: the --space file's, else {DEFAULT_EVALS_PER_EPOCH}]",
        min=1,
    )
    target_text: str | None = option(
        None,
        "Validation accuracy that counts as saturated; 'auto' calibrates it on this data. Stored with the study; "
        f"reopening with another is refused. [default: the study's, else {DEFAULT_TARGET}]",
        flag="--target",
        metavar="ACC|auto",
    )
    sampler: str = option("tpe", "Optuna sampler.", choices=SAMPLERS)
    pruner: str = option(
        "saturation",
        "saturation: the project's (diverged, cannot win, behind the leader, underfit at equal time, plateau, "
        "out of reach); or Optuna's median / hyperband; none.",
        choices=PRUNERS,
    )
    jobs: int | None = option(
        None, "Worker processes on this machine that execute the study's lanes. [default: one per lane]", min=1
    )
    lanes: int | None = option(
        None,
        "Trials the study's schedule trains side by side, each on its lane of the study's clock, with cores/lanes "
        "torch threads; fixed when the study is created. [default: the study's; for a new study --jobs, else one "
        "per card on GPUs, and on a CPU one per core where the step clock measures that faster than one lane]",
        min=1,
    )
    population: int | None = option(
        None,
        "Train the trials of one batch size that a process holds as one model of this many members (on a card: "
        "one launch per step for all); each member is its own trial, priced as its solo run. Fixed when the study "
        "is created; a new study gets this many lanes per card (or per CPU process). [default: the study's, else "
        "1: every trial alone]",
        min=1,
    )
    timeout: float | None = option(None, "Start no new trial after this many seconds. [default: none]", above=0.0)
    seed: int = option(0, "Seed of the sampler and of every trial's training.")
    space_file: Path | None = option(
        None, "TOML file that narrows, widens or fixes search parameters (see docs/search.md).", flag="--space"
    )
    clock: str | None = option(
        None,
        "What a trial's seconds are. calibrated: its optimizer steps priced by a table measured once when the "
        "study is created (the same computation always costs the same; reproducible, and workers on other hosts "
        "join in the study's clock); measured: read off the wall clock. [default: the study's, else calibrated]",
        choices=CLOCK_KINDS,
    )
    clock_from: str | None = option(
        None,
        "Reuse a step clock instead of measuring one: an `export` file, a clock JSON, or another study in this "
        "storage, so that a study can be repeated exactly.",
        metavar="FILE|study:NAME",
    )
    confirm_top: int = option(
        DEFAULT_TOP,
        "After the search, race this many best candidates (completed trials and capped near misses) on fresh "
        "seeds, the same for each; rank them by median time to target. 0: off.",
        flag="--confirm",
        min=0,
    )
    confirm_seeds: int = option(
        DEFAULT_SEEDS,
        "Fresh seeds per candidate in the confirmation race (the study's seed + 1000, + 1001, ...).",
        min=1,
    )
    warm_start: str | None = option(
        None,
        "A new study's first trials train another study's best schedules (study:NAME in this storage, or a "
        "`studies reprice --json` file), priced in the new study's clock. [default: none]",
        metavar="FILE|study:NAME",
    )
    baseline: bool = option(
        True,
        "A new study's first trial trains `lenet-search train`'s default schedule (where the space allows it), "
        "so the pruner has a time to beat from the start.",
    )
    val_size: int = option(DEFAULT_VAL_SIZE, "Training images held out for validation.", shared=True)


def lane_threads(device: torch.device, lanes: int) -> int | None:
    """Torch threads per lane of a new study: the cores split evenly between the lanes
    (oversubscribed threads ran 20-190x slower, docs/scaling.md); None off the CPU."""
    return max(1, cpu_count() // lanes) if device.type == "cpu" else None


def worker_placements(device: torch.device, jobs: int, threads: int | None) -> tuple[Placement, ...]:
    """One placement per worker, each training with the study's `threads` per lane (the same
    computation, whichever process executes it); CUDA workers round-robin over the cards (a
    device named with its index is shared). A lone worker trains on the device as named."""
    if jobs == 1:
        return (Placement(str(device), threads),)
    cards = accelerator_count(device.type)
    return tuple(Placement(worker_device(str(device), i, cards), threads) for i in range(jobs))


def confirm_placement(device: torch.device, jobs: int) -> Placement:
    """The confirmation race runs after the search in the main process, on the first worker's
    device, with every core."""
    return Placement(worker_placements(device, jobs, None)[0].device, lane_threads(device, 1))


# Called at the end of each trial with the trial, how it ended, the target and the device, to
# annotate it elsewhere (the dashboard's note); a module-level function, so a worker process can take it.
TrialNote = Callable[[optuna.Trial, TrialResult, float, str], None]


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs to join the study (picklable): the request, and what
    preparing it settled."""

    request: OptimizeRequest
    target: float
    space: SearchSpace
    device: str  # as asked and resolved: each worker's own is in `placements`
    placements: tuple[Placement, ...]  # worker i trains at placements[i]
    trial_note: TrialNote | None = None

    @property
    def jobs(self) -> int:
        return len(self.placements)
