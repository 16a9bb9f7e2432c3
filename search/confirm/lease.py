"""Who runs the confirmation race when several hosts finish one study's search.

The race is one study attribute, rewritten after every run (search/confirm/racer.py). Hosts that
ran it side by side would each train it all and overwrite each other's, so it has an owner: the
host whose claim of the study's confirmation went in (a compare-and-swap, search/study/claims.py).
The owner races; every HEARTBEAT_SECONDS it writes a heartbeat in the database's clock (the study
attribute STUDY_CONFIRMATION_CLAIM), and once it stops racing (done, interrupted, failed) it
writes that its claim is released. Any other host waits meanwhile for the stored race to be done,
showing its runs as they are stored, and reports it. A claim released, or whose heartbeat is
older than GRACE_SECONDS (its owner killed), is free: the next host to look claims the next
generation and continues the stored race where it stopped.

The owner checks its claim before each write of the race. One that lost it (it seemed dead to
another host: it stopped beating for the grace period, a paused process, say) stops writing and
waits like any other host. What is left is the instant between that check and the write: a
host paused there for the whole grace period could write once more after the taker (it stops at
its next check; the race is deterministic, so what it writes is an earlier state of the same
race, which the taker's next write, or the next run's, replaces).
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import optuna
import sqlalchemy
import sqlalchemy.exc
from optuna.storages import RDBStorage

from search.records.keys import CLAIM_BEAT, CLAIM_GENERATION, CLAIM_OWNER, CLAIM_RELEASED, STUDY_CONFIRMATION_CLAIM
from search.study import claims
from search.study.outage import STORAGE_FAILURES, retried
from search.study.storage import GRACE_SECONDS, HEARTBEAT_SECONDS, rdb_storage

# How often a host that waits for another's race reads it (the race, the claim, the heartbeat).
JOIN_POLL_SECONDS = 0.5


class LostClaim(Exception):
    """Another host took the confirmation over (this one seemed dead): this one stops writing."""


@dataclass(frozen=True)
class Holder:
    """The claim of a host that is racing: its generation and owner."""

    generation: int
    owner: str


class Lease:
    """This process's side of the study's confirmation claim."""

    def __init__(self, study: optuna.Study, storage: RDBStorage, owner: str = claims.OWNER) -> None:
        self.study, self.storage, self.owner = study, storage, owner
        self.subject = claims.confirmation_subject(study._study_id)
        self.generation: int | None = None  # the generation this process holds, while it races
        self._free_after = 0  # the latest generation `holder` found free: the next one is claimed
        self.last_owner: str | None = None  # the other host whose claim `holder` read last
        self._unbeaten: dict[tuple[int, str], float] = {}  # claims seen with no heartbeat of theirs: since when
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def of(cls, study: optuna.Study) -> Lease | None:
        """The study's lease; None where its storage is no database (in memory: one process)."""
        storage = rdb_storage(study._storage)
        return cls(study, storage) if isinstance(storage, RDBStorage) else None

    # -- looking ---------------------------------------------------------------------------------

    def holder(self) -> Holder | None:
        """The host racing now; None when the confirmation is free to claim: never claimed,
        released, or its owner's heartbeat older than the grace period (or, claimed but never
        beaten, the claim seen for that long)."""
        latest = claims.latest(self.storage, self.subject)
        if latest is None:
            self._free_after = 0
            return None
        generation, owner = latest
        self._free_after = generation
        self.last_owner = None if owner == self.owner else owner
        if owner == self.owner:  # this process, not racing now: a claim it left (an earlier call's)
            return None
        beat = self._stored_beat()
        if beat is not None and beat[CLAIM_GENERATION] == generation and beat[CLAIM_OWNER] == owner:
            if beat.get(CLAIM_RELEASED):
                return None
            age = (self._now() - datetime.fromisoformat(beat[CLAIM_BEAT])).total_seconds()
            return None if age > GRACE_SECONDS else Holder(generation, owner)
        # Claimed, and no heartbeat of its own yet: its owner writes one at once, so give it the
        # grace period, counted from when this host first saw the claim.
        since = self._unbeaten.setdefault(latest, time.monotonic())
        return None if time.monotonic() - since > GRACE_SECONDS else Holder(generation, owner)

    def taker(self) -> str | None:
        """The owner of the latest claim where it is another host's (the one that took this
        process's claim over); None where it is this process's or there is none."""
        latest = claims.latest(self.storage, self.subject)
        return None if latest is None or latest[1] == self.owner else latest[1]

    def holds(self) -> bool:
        """Whether this process's claim is still the latest (no host took it over)."""
        return self.generation is not None and claims.latest(self.storage, self.subject) == (
            self.generation,
            self.owner,
        )

    # -- owning ----------------------------------------------------------------------------------

    def claim(self) -> bool:
        """Claim the generation after the one `holder` last found free; True for the one host
        whose claim went in. The owner beats from then on, until `release`."""
        generation = self._free_after + 1
        if not claims.claim(self.storage, self.subject, generation, owner=self.owner):
            return False
        self.generation = generation
        self._lost.clear()
        self._stop.clear()
        self._beat()
        self._thread = threading.Thread(target=self._beating, name="lenet-confirmation-heartbeat", daemon=True)
        self._thread.start()
        return True

    def check(self) -> None:
        """Before each write of the race: raise LostClaim if another host took the claim over."""
        if self._lost.is_set() or not self.holds():
            self._lost.set()
            raise LostClaim(f"the confirmation was taken over by another host (after generation {self.generation})")

    def release(self) -> None:
        """Stop beating, and say the claim is free (if it is still this process's): the next host
        continues at once instead of after the grace period."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=HEARTBEAT_SECONDS + 5)
            self._thread = None
        # A release that fails (the storage gone) only makes the next host wait out the grace period.
        with contextlib.suppress(*STORAGE_FAILURES):
            if not self._lost.is_set() and self.holds():
                self._write(released=True)
        self.generation = None

    # -- the heartbeat ---------------------------------------------------------------------------

    def _beating(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                if not self.holds():
                    self._lost.set()  # taken over: the racer stops at its next write
                    return
                self._beat()
            except STORAGE_FAILURES:
                continue  # the storage did not answer this time: the next beat tries again

    def _beat(self) -> None:
        self._write(released=False)

    def _write(self, released: bool) -> None:
        self.study.set_user_attr(
            STUDY_CONFIRMATION_CLAIM,
            {
                CLAIM_GENERATION: self.generation,
                CLAIM_OWNER: self.owner,
                CLAIM_BEAT: self._now().isoformat(),
                CLAIM_RELEASED: released,
            },
        )

    def _stored_beat(self) -> dict[str, Any] | None:
        beat = self.study._storage.get_study_user_attrs(self.study._study_id).get(STUDY_CONFIRMATION_CLAIM)
        return beat if isinstance(beat, dict) and {CLAIM_GENERATION, CLAIM_OWNER, CLAIM_BEAT} <= set(beat) else None

    def _now(self) -> datetime:
        """The database's time (UTC, naive): one clock for every host, as Optuna's trial heartbeats use."""

        def read() -> Any:
            with self.storage.engine.connect() as conn:
                return conn.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar()

        now = retried(self.storage, read)
        if isinstance(now, str):
            now = datetime.fromisoformat(now)
        if now.tzinfo is not None:  # PostgreSQL: in the session's time zone
            now = now.astimezone(timezone.utc).replace(tzinfo=None)
        return now
