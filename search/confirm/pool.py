"""The race's training runs in the study's lanes: helper processes, one per lane, each with the
study's threads per lane, train the runs the racer starts and compute their next evaluations
ahead, while the racer takes their records one at a time, in its own order.

The racer decides exactly as it does with runs in its own process (search/confirm/racer.py):
it reads each run's records in the same order, and a record computed ahead is the one the run
would have given next. Only the wall time changes, and some work computed ahead is never used
(a challenger that drops leaves its seeds' last evaluations unread).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from lenet.config import TrainConfig
from lenet.curve import EvalRecord
from lenet.data import load_dataset
from lenet.device import Placement, set_threads
from lenet.train import TrainingRun

AHEAD = 4  # evaluations a helper computes ahead of what the racer has read, per run
Key = tuple[int, int]  # (trial, seed)


class RemoteRun:
    """A training run in a helper process, read like a `lenet.train.TrainingRun`."""

    def __init__(self, pool: RunPool, key: Key, config: TrainConfig) -> None:
        self.pool, self.key, self.config = pool, key, config
        self.history: list[EvalRecord] = []
        self.ended = False

    def advance(self) -> EvalRecord | None:
        if self.ended:
            return None
        record = self.pool.next_record(self.key)
        if record is None:
            self.ended = True
        else:
            self.history.append(record)
        return record


class RunPool:
    """Helper processes at `placements`, loading the data from `data_path`."""

    trains_ahead = True  # a helper trains a started run's evaluations before they are asked for

    def __init__(self, placements: Sequence[Placement], data_path: str | None, val_size: int) -> None:
        ctx = multiprocessing.get_context("spawn")  # no forked torch/OpenMP state
        self._pipes: list[Connection] = []
        self._helpers = []
        for placement in placements:
            mine, theirs = ctx.Pipe()
            helper = ctx.Process(target=_helper, args=(theirs, placement, data_path, val_size), daemon=True)
            helper.start()
            self._pipes.append(mine)
            self._helpers.append(helper)
        self._where: dict[Key, int] = {}
        self._load = [0] * len(placements)

    def run(self, key: Key, config: TrainConfig) -> RemoteRun:
        """Start `config` (its seed the key's) on the least loaded helper."""
        helper = min(range(len(self._load)), key=lambda i: (self._load[i], i))
        self._where[key] = helper
        self._load[helper] += 1
        self._pipes[helper].send(("start", key, config.to_dict()))
        return RemoteRun(self, key, config)

    def next_record(self, key: Key) -> EvalRecord | None:
        pipe = self._pipes[self._where[key]]
        pipe.send(("next", key))
        reply = pipe.recv()
        if isinstance(reply, BaseException):
            raise reply
        return None if reply is None else EvalRecord(**reply)

    def drop(self, key: Key) -> None:
        """The racer needs no more of this run."""
        helper = self._where.pop(key, None)
        if helper is not None:
            self._load[helper] -= 1
            self._pipes[helper].send(("drop", key))

    def close(self) -> None:
        for pipe in self._pipes:
            pipe.send(("stop",))
        for helper in self._helpers:
            helper.join(timeout=30)
            if helper.is_alive():
                helper.kill()

    def __enter__(self) -> RunPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _helper(pipe: Connection, placement: Placement, data_path: str | None, val_size: int) -> None:
    """A helper's loop: answer the racer, and between requests compute evaluations ahead."""
    threads = set_threads(placement.threads) if placement.threads is not None else None
    data = load_dataset(data_path, placement.device, val_size=val_size)
    runs: dict[Key, TrainingRun] = {}
    ahead: dict[Key, list[EvalRecord | None]] = {}
    try:
        while True:
            if not pipe.poll(0 if _speculate(runs, ahead, block=False) else None):
                _speculate(runs, ahead, block=True)
                continue
            command = pipe.recv()
            if command[0] == "stop":
                return
            if command[0] == "start":
                _, key, config = command
                runs[key] = TrainingRun(TrainConfig.from_dict(config), data, threads=threads)
                ahead[key] = []
            elif command[0] == "drop":
                runs.pop(command[1], None)
                ahead.pop(command[1], None)
            elif command[0] == "next":
                key = command[1]
                record = ahead[key].pop(0) if ahead[key] else _advance(runs[key])
                pipe.send(None if record is None else record.to_dict())
    except (EOFError, KeyboardInterrupt):
        return
    except BaseException as exc:  # the racer raises it where it reads
        pipe.send(exc)


def _advance(run: TrainingRun) -> EvalRecord | None:
    return run.advance()


def _speculate(runs: dict[Key, TrainingRun], ahead: dict[Key, list[EvalRecord | None]], block: bool) -> bool:
    """Whether there is a run to compute ahead; with `block`, compute one evaluation of the run
    with the fewest ready (None ends a run's list: it has no more)."""
    open_runs = [k for k, r in runs.items() if len(ahead[k]) < AHEAD and not (ahead[k] and ahead[k][-1] is None)]
    if not open_runs:
        return False
    if block:
        key = min(open_runs, key=lambda k: len(ahead[k]))
        ahead[key].append(runs[key].advance())
    return True
