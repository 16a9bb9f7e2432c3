"""Preparing a run: where each worker trains, and what is said when workers share a card."""

import torch

import search.run.prepare
from search.run.prepare import shared_device_notes
from search.run.spec import Placement, confirm_placement, lane_threads, worker_placements


def test_workers_sharing_a_card_are_warned_about(monkeypatch):
    monkeypatch.setattr(search.run.prepare, "accelerator_count", lambda kind: 2)
    assert shared_device_notes(torch.device("cuda"), 2) == []
    (note,) = shared_device_notes(torch.device("cuda"), 3)
    assert "3 workers share 2 cuda device(s)" in note
    assert "share 1 cuda" in shared_device_notes(torch.device("cuda:1"), 2)[0]
    assert shared_device_notes(torch.device("cpu"), 4) == []


def test_each_worker_gets_its_placement_once(monkeypatch):
    import search.run.spec

    monkeypatch.setattr(search.run.spec, "cpu_count", lambda: 8)
    assert (
        lane_threads(torch.device("cpu"), 1) == 8 and lane_threads(torch.device("cpu"), 3) == 2
    )  # never oversubscribed
    assert lane_threads(torch.device("cuda"), 2) is None
    # Every worker trains with the study's threads per lane, whichever process it is.
    assert worker_placements(torch.device("cpu"), 1, 4) == (Placement("cpu", 4),)
    assert worker_placements(torch.device("cpu"), 3, 2) == (Placement("cpu", 2),) * 3
    assert confirm_placement(torch.device("cpu"), 4) == Placement("cpu", 8)  # after the search: every core
    monkeypatch.setattr(search.run.spec, "accelerator_count", lambda kind: 2)
    cards = worker_placements(torch.device("cuda"), 3, None)
    assert [p.device for p in cards] == ["cuda:0", "cuda:1", "cuda:0"] and {p.threads for p in cards} == {None}
    assert worker_placements(torch.device("cuda"), 1, None) == (Placement("cuda", None),)  # a lone worker: as named
    assert confirm_placement(torch.device("cuda"), 3) == Placement("cuda:0", None)
    assert [p.device for p in worker_placements(torch.device("cuda:1"), 2, None)] == ["cuda:1", "cuda:1"]
