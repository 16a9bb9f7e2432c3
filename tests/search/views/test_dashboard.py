"""The real optuna-dashboard server started by `lenet-search dashboard`, read over HTTP and
rendered by a real headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from search.errors import RequestError
from search.records.study import study_record
from search.study.storage import make_storage
from search.views.dashboard import (
    FIGURE_ID,
    IMPORTANCE_ID,
    curves_figure,
    exposure_warning,
    importance_figure,
    study_note,
)
from search.views.importance import accuracy_importances
from tests.search.cli_helpers import assert_one_line_error, run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def server(finished_study, tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("dash") / "server.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "search.cli", "dashboard", "--storage", finished_study, "--port", str(port)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[3],
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            _get_json(f"{base}/api/studies")
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"dashboard did not start: {log.read_text()[-2000:]}")
            time.sleep(0.3)
    yield base
    proc.terminate()
    proc.wait(timeout=10)


def test_http_api_serves_the_study_and_its_trials(server, finished_study):
    summaries = _get_json(f"{server}/api/studies")["study_summaries"]
    (summary,) = [s for s in summaries if s["study_name"] == "lenet5-cifar10"]
    detail = _get_json(f"{server}/api/studies/{summary['study_id']}")
    assert len(detail["trials"]) == 6
    assert detail["objective_names"] == ["training seconds to target (s, study clock)"]
    attrs = {a["key"]: a["value"] for a in detail["user_attrs"]}
    assert attrs["target"] == "0.6"
    # the dashboard command attached the explanatory note and the figures
    assert "**Target** validation accuracy: **0.6**" in detail["note"]["body"]
    assert "a pruned trial has none" in detail["note"]["body"]
    assert FIGURE_ID in json.dumps(detail)
    study = optuna.load_study(study_name="lenet5-cifar10", storage=finished_study)
    assert (IMPORTANCE_ID in json.dumps(detail)) == (accuracy_importances(study.trials) is not None)
    # No trial that missed the target has a value: none can look faster than the best.
    for t in detail["trials"]:
        assert (t["state"] == "Complete") == bool(t.get("values")), t["state"]
    # The learning curves stay (validation error at each epoch), with the NaN that ends a pruned one.
    assert any(len(t["intermediate_values"]) >= 2 for t in detail["trials"])


def test_chromium_renders_the_study_page(server, tmp_path):
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium")
        pytest.skip("chromium is not installed")
    profile = tmp_path / "profile"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=15000",
        "--dump-dom",
        f"{server}/dashboard/studies/1",
    ]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    assert "lenet5-cifar10" in dom
    assert "training seconds to target (s, study clock)" in dom


def test_figure_and_note_describe_the_study(finished_study):
    study = optuna.load_study(study_name="lenet5-cifar10", storage=make_storage(finished_study))
    fig = curves_figure(study, top=3)
    assert len(fig.data) == 3
    assert all(len(trace.x) == len(trace.y) >= 1 for trace in fig.data)
    assert fig.layout.xaxis.title.text.startswith("training seconds")
    figure = importance_figure(study)
    assert (figure is None) == (accuracy_importances(study.trials) is None)
    note = study_note(study, study_record(study))
    assert "train" in note.lower() and "0.6" in note


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_is_served_without_a_warning(host):
    assert exposure_warning(host, allow_remote=False) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::", "dash.example.org"])
def test_another_address_is_refused_unless_allowed_and_then_warned(host, tmp_path):
    with pytest.raises(RequestError):
        exposure_warning(host, allow_remote=False)
    assert "no authentication" in exposure_warning(host, allow_remote=True)
    storage = tmp_path / "none.db"
    result = run_cli("dashboard", "--host", host, "--storage", f"sqlite:///{storage}")
    assert_one_line_error(result, "has no authentication", "(--host)")
    assert not storage.exists()  # refused before anything was written


def test_allowed_remote_serves_and_warns(finished_study, tmp_path):
    port = _free_port()
    command = [sys.executable, "-m", "search.cli", "dashboard", "--storage", finished_study, "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--host", "0.0.0.0", "--allow-remote"],
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        first = proc.stderr.readline()
        assert first.startswith("Warning: optuna-dashboard has no authentication: on 0.0.0.0"), first
        assert "optuna-dashboard for" in proc.stderr.readline()
        deadline = time.monotonic() + 30
        while True:
            try:
                assert _get_json(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
