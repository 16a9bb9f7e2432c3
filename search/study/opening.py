"""Opening a study: created with its record, or reopened after checking that it is the same
search (target, space, hardware), with the sampler and pruner it runs with."""

from __future__ import annotations

import contextlib
import time
import warnings

import optuna
from optuna.storages import BaseStorage
from optuna.study import StudyDirection

from search.errors import StudyError
from search.records.keys import STUDY_TARGET
from search.records.study import StudyRecord
from search.sampling.scheduled import ScheduledSampler
from search.space import BUDGET
from search.study.claims import claim, creation_subject

DEFAULT_STUDY = "lenet5-cifar10"
OBJECTIVE_NAME = "training seconds to target (s, study clock)"


def study_names(storage: BaseStorage) -> list[str]:
    return [s.study_name for s in storage.get_all_studies()]


CREATION_SECONDS = 10.0  # how long a study another host is creating may go without its target


class CreatedMeanwhile(Exception):
    """Another host created the study between this one's look and its own creation: start
    again, as a reopen of the study now stored (its layout and clock are the other host's)."""


def record_once_created(storage: BaseStorage, name: str) -> StudyRecord | None:
    """`stored_record`, waiting while another host is still writing an empty study's attributes
    (its target comes last): None where there is no such study. An empty study whose attributes
    stay as they are, without a target, for CREATION_SECONDS is a creation that was killed: it
    holds nothing, so it is deleted (by one host: a claim) and made again by this run. One with
    attributes that are not a record's is someone else's, and refused."""
    deadline = time.monotonic() + CREATION_SECONDS
    seen = None  # the empty study's id and attributes, as last seen
    while True:
        try:
            return stored_record(storage, name)
        except StudyError:
            try:
                study_id = storage.get_study_id_from_name(name)
                if storage.get_n_trials(study_id) > 0:
                    raise  # a study with trials is not being created: foreign, refused at once
                now = (study_id, storage.get_study_user_attrs(study_id))
            except KeyError:  # deleted meanwhile (a killed creation, by another host): look again
                continue
            if STUDY_TARGET in now[1]:  # its target was written between the two reads: look again
                continue
            if now[1] and not StudyRecord.partly_written(now[1]):
                raise
            if now != seen:  # still being written: wait on
                seen, deadline = now, time.monotonic() + CREATION_SECONDS
            elif time.monotonic() > deadline:
                if claim(storage, creation_subject(name, study_id), 1):
                    with contextlib.suppress(KeyError):
                        storage.delete_study(study_id)
                    return None
            time.sleep(0.1)


def stored_record(storage: BaseStorage, name: str) -> StudyRecord | None:
    """The record of study `name`, None when there is no such study; a StudyError for a
    study that lenet-search did not create."""
    if name not in study_names(storage):
        return None
    attrs = storage.get_study_user_attrs(storage.get_study_id_from_name(name))
    record = StudyRecord.of(attrs)
    if record is None:
        raise StudyError(f"study {name!r} was not created by lenet-search (it has no target)", subject="study_name")
    return record


def open_study(
    name: str,
    storage: BaseStorage,
    wanted: StudyRecord,
    stored: StudyRecord | None,
    *,
    sampler: str,
    seed: int,
    pruner: optuna.pruners.BasePruner,
    explicit_target: bool,
) -> tuple[optuna.Study, list[str]]:
    """Create the study with `wanted` as its record where `stored` (read by `record_once_created`)
    is None, or reopen it after checking that it is the same search. Returns the study, with its
    sampler built once, and warnings for the user.

    Refuses (StudyError) another target or space, or another device type; warns about
    another thread count or data set. Raises CreatedMeanwhile where another host created the
    study after `stored` was read.
    """
    created = stored is None
    if created:
        try:
            study_id = storage.create_new_study(directions=[StudyDirection.MINIMIZE], study_name=name)
        except optuna.exceptions.DuplicatedStudyError:
            raise CreatedMeanwhile(name) from None
        # The target last: a study with a target is whole, so another host that sees one can join.
        attrs = wanted.items()
        for key in sorted(attrs, key=lambda k: k == STUDY_TARGET):
            storage.set_study_user_attr(study_id, key, attrs[key])
    notes = [] if created else _check_reopen(name, stored, wanted, explicit_target)
    study = load_study(name, storage, stored or wanted, sampler=sampler, seed=seed, pruner=pruner)
    if created:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([OBJECTIVE_NAME])
    return study, notes


def load_study(
    name: str, storage: BaseStorage, record: StudyRecord, *, sampler: str, seed: int, pruner: optuna.pruners.BasePruner
) -> optuna.Study:
    """The stored study with the sampler and pruner this process runs it with (built here, once)."""
    return optuna.load_study(
        study_name=name,
        storage=storage,
        sampler=ScheduledSampler(sampler, seed, record.baseline, record.warm_start or ()),
        pruner=pruner,
    )


def _check_reopen(name: str, stored: StudyRecord, wanted: StudyRecord, explicit_target: bool) -> list[str]:
    if explicit_target and abs(stored.target - wanted.target) > 1e-12:
        raise StudyError(
            f"study {name!r} has target {stored.target}, not {wanted.target}; "
            "use another study name for another target",
            subject="target_text",
        )
    if stored.space != wanted.space:
        differs = [k for k in BUDGET if stored.space.get(k) != wanted.space.get(k)]
        what = ", ".join(f"{k} {stored.space.get(k)} (this run: {wanted.space.get(k)})" for k in differs)
        raise StudyError(
            f"study {name!r} was created with another search space ({what or 'parameters differ'}); "
            "reopen it with the same space file, max_epochs and evals_per_epoch, or use another study name"
        )
    if stored.device.split(":")[0] != wanted.device.split(":")[0]:
        raise StudyError(
            f"study {name!r} measured seconds on {stored.device}, this run would use {wanted.device}: "
            "its times would not be comparable; use another study name",
            subject="device",
        )
    notes = []
    if stored.threads != wanted.threads:
        notes.append(
            f"study {name!r} was timed with {stored.threads} threads per worker, this run uses "
            f"{wanted.threads}: new trials' seconds are not directly comparable with earlier ones"
        )
    if stored.hardware and wanted.hardware and stored.hardware.get("name") != wanted.hardware.get("name"):
        notes.append(
            f"study {name!r} was timed on {stored.hardware.get('name')}, this run uses {wanted.hardware.get('name')}: "
            "new trials' seconds are not directly comparable with earlier ones"
        )
    elif stored.hardware and wanted.hardware and stored.hardware.get("type") != "cpu":
        for key in ("cuda", "cudnn"):
            if stored.hardware.get(key) != wanted.hardware.get(key):
                notes.append(
                    f"study {name!r} was timed with {key} {stored.hardware.get(key)}, this run has "
                    f"{wanted.hardware.get(key)}"
                )
    if stored.data_checksum != wanted.data_checksum:
        notes.append(f"study {name!r} was created on another data source (checksum differs)")
    return notes


def load_existing(storage: BaseStorage, name: str) -> optuna.Study:
    """An existing study, or a StudyError that lists the ones there are."""
    names = study_names(storage)
    if name not in names:
        there = f"studies there: {', '.join(names)}" if names else "the storage holds no studies"
        raise StudyError(f"no study named {name!r} ({there})", subject="study_name")
    return optuna.load_study(study_name=name, storage=storage)
