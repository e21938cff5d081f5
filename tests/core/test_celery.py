"""Celery: configured so no task is lost or doubled; the nightly ledger check on a real worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from core.celery import app
from core.ledger.models import LedgerCheckRun
from core.ledger.tasks import ledger_check_task

ROOT = Path(__file__).parents[2]
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")


def test_tasks_are_acknowledged_late_and_requeued_when_a_worker_dies() -> None:
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    # Redis hands an unacknowledged task to another worker only after this: longer than any task
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit
    assert ledger_check_task.max_retries == 3


def test_nightly_ledger_check_is_scheduled() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["ledger-check-nightly"]
    assert entry["task"] == ledger_check_task.name == "ledger.ledger_check"
    assert settings.CELERY_BEAT_SCHEDULER == "django_celery_beat.schedulers:DatabaseScheduler"


def test_every_scheduled_task_exists() -> None:
    # a beat entry naming a task no app registers would be sent and never run
    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "reporting.kpi_snapshot" in scheduled
    assert scheduled - set(app.tasks) == set()


@pytest.mark.xdist_group("celery_worker")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_ledger_check_runs_on_a_real_worker() -> None:
    # given a worker on Redis, on this test database, listening on a queue of its own
    queue = f"test-{uuid.uuid4().hex[:8]}"
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": REDIS_URL,
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "core",
            "worker",
            "-Q",
            queue,
            "-c",
            "1",
            "--pool",
            "solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    old = (app.conf.broker_url, app.conf.task_always_eager)
    try:
        app.conf.broker_url = REDIS_URL
        app.conf.task_always_eager = False
        # when the task is sent through the broker
        with app.connection_for_write() as conn:
            ledger_check_task.apply_async(queue=queue, connection=conn)
        # then the worker runs it and records the run (the row exists from the start of the
        # run; it is finished once finished_at is set)
        finished = LedgerCheckRun.objects.filter(finished_at__isnull=False)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not finished.exists():
            time.sleep(0.25)
            assert worker.poll() is None, worker.stdout.read().decode() if worker.stdout else ""
        run = LedgerCheckRun.objects.get()
        assert run.finished_at is not None
        assert run.problems == []
        assert run.ok
    finally:
        app.conf.broker_url, app.conf.task_always_eager = old
        worker.terminate()
        worker.wait(timeout=30)
        connection.close()
