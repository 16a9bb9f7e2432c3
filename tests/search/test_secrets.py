"""The database password never leaves the process: a canary password, the real PostgreSQL
server's, grepped for in every output, file and HTTP body of the commands that name a storage."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import optuna
import pytest
import sqlalchemy.engine

from tests.search.run.test_reliability import _command, _env, _wait_mid_trial
from tests.search.views.test_dashboard import _free_port


def _cli(*args: object, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "search.cli", *map(str, args)]
    return subprocess.run(command, env=_env(), cwd=cwd, capture_output=True, text=True, timeout=300)


def _every_file(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _dashboard_bodies(storage: str, cwd: Path) -> tuple[list[bytes], str]:
    port = _free_port()
    command = [sys.executable, "-m", "search.cli", "dashboard", "--storage", storage, "--port", str(port)]
    proc = subprocess.Popen(command, env=_env(), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base, bodies = f"http://127.0.0.1:{port}", []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/studies", timeout=5) as r:
                    bodies.append(r.read())
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "dashboard did not start"
                time.sleep(0.3)
        for summary in json.loads(bodies[0])["study_summaries"]:
            with urllib.request.urlopen(f"{base}/api/studies/{summary['study_id']}", timeout=10) as r:
                bodies.append(r.read())
        for page in ("/dashboard", "/api/meta"):
            try:
                with urllib.request.urlopen(base + page, timeout=10) as r:
                    bodies.append(r.read())
            except urllib.error.HTTPError as exc:  # a page this version does not serve
                bodies.append(exc.read())
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    return bodies, out.decode()


def test_no_output_file_or_page_shows_the_database_password(tiny, postgres_url, tmp_path):
    password = sqlalchemy.engine.make_url(postgres_url).password
    assert password, "the test server's URL has a password"
    if len(password) < 8 or password in "lenet-search lenet5-cifar10 optimize":
        pytest.skip(f"the password must be a canary, not a word of the output ({password!r}); .ci/run sets one")
    name = f"secret-{uuid.uuid4().hex[:8]}"
    work = tmp_path / "work"
    work.mkdir()
    outputs: list[str] = []

    def run(command: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(command, env=_env(), cwd=work, capture_output=True, text=True, timeout=300)

    command = _command(tiny, postgres_url, "--trials", "3", "--study", name)
    try:
        proc = subprocess.Popen(
            command, env=_env(), cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        _wait_mid_trial(postgres_url, proc, name=name)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        outputs += [out, err]

        resumed = run(command)
        assert resumed.returncode == 0, resumed.stderr
        outputs += [resumed.stdout, resumed.stderr]
        assert ":***@" in resumed.stderr + resumed.stdout  # the storage is named, masked

        refused = run([*command, "--target", "2"])
        assert refused.returncode == 2
        outputs += [refused.stdout, refused.stderr]
        unreachable = _cli("studies", "--storage", postgres_url.replace(":5432/", ":1/"), cwd=work)
        assert unreachable.returncode == 2 and ":***@" in unreachable.stderr
        outputs += [unreachable.stdout, unreachable.stderr]

        for args in (
            ("export", "--study", name, "--storage", postgres_url, "--trial", "0", "-o", work / "best.json"),
            ("studies", "--storage", postgres_url),
            ("studies", "--storage", postgres_url, "show", name),
            ("report", "--study", name, "--storage", postgres_url, "-o", work / "report"),
        ):
            done = _cli(*args, cwd=work)
            assert done.returncode == 0, (args, done.stderr)
            outputs += [done.stdout, done.stderr]
        exported = json.loads((work / "best.json").read_text())
        assert (
            exported["study"]["storage"].endswith("@127.0.0.1:5432/lenet_test")
            and ":***@" in exported["study"]["storage"]
        )

        bodies, log = _dashboard_bodies(postgres_url, work)
        outputs.append(log)
        assert len(bodies) >= 3 and any(name.encode() in b for b in bodies)

        leaks = [i for i, text in enumerate(outputs) if password in text]
        assert not leaks, [outputs[i][:2000] for i in leaks]
        assert not [b[:200] for b in bodies if password.encode() in b]
        files = _every_file(work)
        assert len(files) >= 5  # the export, the report's pages and figures
        assert not [str(p) for p in files if password.encode() in p.read_bytes()]
    finally:
        optuna.delete_study(study_name=name, storage=postgres_url)
