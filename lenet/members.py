"""Trials trained as members of populations (lenet/population.py), each driven like a solo
`TrainingRun`: `advance()` to its next evaluation, `stop()`, `result()`.

A `PopulationPool` holds the populations of one process, one or more per shape the members must
share (batch size, evaluations per epoch, Nesterov), each with `slots` members, built at first
need and reused. A trial joins a population with an idle slot at its next epoch boundary; until
then, and whenever a member asks for an evaluation it has not got yet, the population trains all
its members on, and each keeps the records it was not asked for yet in order (its caller may be
waiting to decide an earlier one). A member's arithmetic depends on its own config and the
population's width alone, never on the other members or its slot (tests/lenet/test_members.py),
so whichever trials happen to share a population, each trains the same curve.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from torch import nn

from lenet.config import TrainConfig
from lenet.curve import EvalRecord
from lenet.data import DeviceData
from lenet.device import DevicePolicy, policy_for
from lenet.population import PopulationRun
from lenet.steps import Capture, capture_cuda
from lenet.train import Status, TrainingRun, TrainResult

Shape = tuple[int, int, bool]  # batch size, evaluations per epoch, Nesterov: what members share


def shape_of(config: TrainConfig) -> Shape | None:
    """The shape a config shares with its population's members; None: it trains alone
    (augmentation would need a generator per member inside the step)."""
    return None if config.augment else (config.batch_size, config.evals_per_epoch, config.nesterov)


@dataclass
class _Population:
    run: PopulationRun
    shape: Shape
    holders: dict[int, MemberRun]  # slot -> the member run training there


class PopulationPool:
    """The populations of one process, `slots` members wide."""

    def __init__(
        self, data: DeviceData, slots: int, *, policy: DevicePolicy | None = None, capture: Capture = capture_cuda
    ) -> None:
        if slots < 1:
            raise ValueError("a population has at least one slot")
        self.data, self.slots, self.capture = data, slots, capture
        self.policy = policy or policy_for(data.device)
        self.populations: list[_Population] = []

    def run(self, config: TrainConfig, *, threads: int | None = None) -> MemberRun | TrainingRun:
        """A run of `config`: a member of a population, or a solo run where it cannot share one."""
        if shape_of(config) is None:
            return TrainingRun(config, self.data, threads=threads, policy=self.policy)
        return MemberRun(self, config)

    # -- used by MemberRun ----------------------------------------------------------------------

    def train_for(self, member: MemberRun) -> None:
        """Train until `member` has a record to take, or has ended: join it to a population
        first (at an epoch boundary), else train its population on to the next evaluation."""
        if member.population is None:
            self._join_or_wait(member)
        else:
            self._advance(member.population)

    def seat(self, member: MemberRun) -> None:
        """Seat `member` now, without training: in a population of its shape that is at an epoch
        boundary with room, else in a new one. Members seated one after another start together
        (a candidate's seeds in the confirmation race) instead of each joining an epoch after the
        one before; a member joins a population the same whenever it does."""
        if member.population is not None:
            return
        at_boundary = [p for p in self._with_room(member) if p.run.at_epoch_boundary]
        if at_boundary:
            self._seat(at_boundary[0], member)
        else:
            self._new_population(member)

    def _with_room(self, member: MemberRun) -> list[_Population]:
        """The populations of `member`'s shape with an idle slot."""
        shape = shape_of(member.config)
        return [p for p in self.populations if p.shape == shape and len(p.holders) < self.slots]

    def _join_or_wait(self, member: MemberRun) -> None:
        with_room = self._with_room(member)
        at_boundary = [p for p in with_room if p.run.at_epoch_boundary]
        if at_boundary:
            self._seat(at_boundary[0], member)
        elif with_room:
            self._advance(with_room[0])  # to its epoch's end: the member joins there
        else:
            self._new_population(member)

    def _new_population(self, member: MemberRun) -> None:
        slots = [member.config] + [None] * (self.slots - 1)
        run = PopulationRun(slots, self.data, policy=self.policy, capture=self.capture)
        population = _Population(run, shape_of(member.config), {})
        self.populations.append(population)
        self._hold(population, 0, member)

    def _seat(self, population: _Population, member: MemberRun) -> None:
        slot = next(s for s in range(self.slots) if s not in population.holders)
        population.run.refill(slot, member.config)
        self._hold(population, slot, member)

    def _hold(self, population: _Population, slot: int, member: MemberRun) -> None:
        population.holders[slot] = member
        member.population, member.slot = population, slot

    def _advance(self, population: _Population) -> None:
        records = population.run.advance()
        for slot, record in records.items():
            population.holders[slot].records.append(record)
        for slot, member in list(population.holders.items()):
            state = population.run.members[slot]
            if state is not None and state.status != "running":  # its budget spent, or diverged
                member.ended = (state.status, state.reason)
                member.model = population.run.member_model(slot)
                del population.holders[slot]

    def release(self, member: MemberRun, reason: str) -> None:
        """Take `member` out of its population: its slot idles until the next trial joins."""
        population = member.population
        if population is None or population.holders.get(member.slot) is not member:
            return
        member.model = population.run.member_model(member.slot)
        del population.holders[member.slot]
        population.run.stop(member.slot, reason)


class MemberRun:
    """One trial trained in a population, driven as a `TrainingRun` is."""

    def __init__(self, pool: PopulationPool, config: TrainConfig) -> None:
        self.pool, self.config = pool, config
        self.population: _Population | None = None
        self.slot: int | None = None
        self.records: deque[EvalRecord] = deque()  # trained, not yet taken by `advance`
        self.history: list[EvalRecord] = []
        self.ended: tuple[Status, str] | None = None  # how the population ended it
        self.model: nn.Module | None = None  # its weights when it left the population
        self._stopped: str | None = None

    def _state(self) -> tuple[Status, str]:
        """Its status and reason: stopped by its caller, else as the population ended it once its
        records are taken, else running."""
        if self._stopped is not None:
            return "stopped", self._stopped
        if self.ended is not None and not self.records:
            return self.ended
        return "running", "running"

    @property
    def status(self) -> Status:
        return self._state()[0]

    @property
    def reason(self) -> str:
        return self._state()[1]

    def advance(self) -> EvalRecord | None:
        """The next evaluation's record (also appended to `history`); None once the run has ended."""
        while self.status == "running" and not self.records:
            self.pool.train_for(self)
        if not self.records:
            return None
        record = self.records.popleft()
        self.history.append(record)
        if not math.isfinite(record.train_loss):  # as a solo run: the diverged evaluation ends it unreported
            self.records.clear()
            return None
        return record

    def stop(self, reason: str) -> None:
        """End the run early; `reason` says why. Its slot takes the next trial."""
        if self.status == "running":
            self._stopped = reason
        self.release()

    def release(self) -> None:
        """Give the slot back: the run will not be advanced again."""
        self.records.clear()
        self.pool.release(self, self._stopped or "released")

    def result(self) -> TrainResult:
        model = self.model
        if model is None and self.population is not None and self.slot is not None:
            model = self.population.run.member_model(self.slot)
        return TrainResult(
            config=self.config,
            history=self.history,
            status=self.status,
            reason=self.reason,
            model=model,
            device=str(self.pool.data.device),
            threads=0,
        )
