"""Faults survived by real Celery workers (RELIABILITY.md F1, F2, F3).

Each worker is a real ``celery worker`` process on Redis (``REDIS_URL``) and on this test
database, listening on a queue of its own; the tests kill its processes with SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from celery import Task
from django.conf import settings
from django.db import connection

from core.celery import DEFAULT_MAX_RETRIES, BoundedRetryTask, app, task_failure_record
from core.models import DiagnosticEffect, TaskFailure, TaskFailureStatus
from core.roles import STAFF_ROLES, Role
from core.tasks import diagnostics_fail_task, diagnostics_slow_effect_task

ROOT = Path(__file__).parents[2]
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
TIMEOUT = 40.0
VISIBILITY_TIMEOUT = 5

# A worker sees the other workers' messages on Redis (one with a short visibility timeout takes
# back any message unacknowledged that long), so these tests run one at a time on one xdist node.
pytestmark = pytest.mark.xdist_group("celery_worker")
real_worker = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def database_url() -> str:
    db = settings.DATABASES["default"]
    auth = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """A ``celery worker`` subprocess in a process group of its own, logging to a file."""

    def __init__(
        self, queue: str, log: Path, *, pool: str = "prefork", visibility_timeout: int | None = None
    ) -> None:
        env = {**os.environ, "DATABASE_URL": database_url(), "CELERY_BROKER_URL": REDIS_URL}
        if visibility_timeout is not None:
            env["CELERY_VISIBILITY_TIMEOUT"] = str(visibility_timeout)
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "core",
                    "worker",
                    "-Q",
                    queue,
                    "--pool",
                    pool,
                    "-c",
                    "1",
                    "--without-heartbeat",
                    "--without-gossip",
                    "--without-mingle",
                    "-l",
                    "INFO",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> list[int]:
        """The pids of the worker's pool processes (its direct children)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return sorted(pids)

    def kill_all(self) -> None:
        """SIGKILL the whole worker: the main process and its pool, as a machine dying would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    """The test process publishes to Redis (not eagerly)."""
    old = (app.conf.broker_url, app.conf.task_always_eager)
    app.conf.broker_url = REDIS_URL
    app.conf.task_always_eager = False
    try:
        yield redis.Redis.from_url(REDIS_URL)
    finally:
        app.conf.broker_url, app.conf.task_always_eager = old
        connection.close()


@pytest.fixture
def queue(broker: redis.Redis) -> Iterator[str]:
    """A queue of the test's own; removed afterwards with any message left in it."""
    name = f"test-faults-{uuid.uuid4().hex[:10]}"
    yield name
    broker.delete(name, f"_kombu.binding.{name}", f"_kombu.binding_permanent.{name}")
    for tag, message in broker.hgetall("unacked").items():
        if name.encode() in message:
            broker.hdel("unacked", tag)
            broker.zrem("unacked_index", tag)


@pytest.fixture
def start_worker(tmp_path: Path, queue: str) -> Iterator[Callable[..., Worker]]:
    """Starts workers on the test's queue; every one is killed when the test ends."""
    workers: list[Worker] = []

    def start(**options: Any) -> Worker:
        worker = Worker(queue, tmp_path / f"worker-{len(workers)}.log", **options)
        workers.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in workers:
            worker.kill_all()


def send(task: Task, queue: str, **kwargs: Any) -> str:
    with app.connection_for_write() as conn:
        return task.apply_async(kwargs=kwargs, queue=queue, connection=conn).id


def wait_for(condition: Callable[[], bool], workers: list[Worker], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {w.log.name}\n{w.output()[-4000:]}" for w in workers)
            pytest.fail(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.1)


def effect(key: str) -> DiagnosticEffect | None:
    return DiagnosticEffect.objects.filter(key=key).first()


def completions(key: str) -> int:
    row = effect(key)
    return row.completions if row else 0


def unacknowledged(broker: redis.Redis, task_id: str) -> bool:
    """Whether Redis still holds the task's message as delivered but not acknowledged."""
    return any(task_id.encode() in message for message in broker.hvals("unacked"))


def settled(broker: redis.Redis, queue: str, task_id: str) -> Callable[[], bool]:
    return lambda: broker.llen(queue) == 0 and not unacknowledged(broker, task_id)


# --- F1: a worker's pool process killed mid-task -------------------------------------------


@real_worker
@pytest.mark.parametrize("killed", ["before_the_effect", "after_the_effect"])
def test_F1_pool_process_killed_mid_task_reruns_it_with_one_effect(
    killed: str, broker: redis.Redis, queue: str, start_worker: Callable[..., Worker]
) -> None:
    # given a prefork worker with one pool process, running the slow task
    key = f"f1-{uuid.uuid4().hex}"
    worker = start_worker(pool="prefork")
    before, after = (2.0, 0.0) if killed == "before_the_effect" else (0.0, 2.0)
    task_id = send(
        diagnostics_slow_effect_task, queue, key=key, seconds_before=before, seconds_after=after
    )
    if killed == "before_the_effect":
        wait_for(lambda: (row := effect(key)) is not None and row.attempts == 1, [worker], "run 1")
    else:
        wait_for(lambda: (row := effect(key)) is not None and row.applied_at, [worker], "effect")
    time.sleep(0.3)
    [child] = worker.children()
    first = effect(key)
    assert first is not None
    assert first.completions == 0
    assert (first.applied_at is None) == (killed == "before_the_effect")

    # when the pool process is killed with SIGKILL in the middle of the task
    os.kill(child, signal.SIGKILL)

    # then the main process requeues the message and a new pool process runs it to the end
    wait_for(lambda: completions(key) == 1, [worker], "the rerun")
    wait_for(settled(broker, queue, task_id), [worker], "the acknowledgement")
    row = effect(key)
    assert row is not None
    assert (row.attempts, row.completions) == (2, 1)
    assert row.applied_at is not None
    if killed == "after_the_effect":
        assert row.applied_at == first.applied_at  # the rerun found it applied: one effect
    assert worker.process.poll() is None
    assert worker.children() not in ([], [child])
    assert not TaskFailure.objects.exists()


# --- F2: a whole worker killed; the message comes back after the visibility timeout ---------


@real_worker
def test_F2_task_redelivered_after_visibility_timeout_runs_twice_with_one_effect(
    broker: redis.Redis, queue: str, start_worker: Callable[..., Worker]
) -> None:
    # given worker A has applied the slow task's effect but not finished (nor acknowledged) it
    key = f"f2-{uuid.uuid4().hex}"
    worker_a = start_worker(pool="prefork")
    task_id = send(diagnostics_slow_effect_task, queue, key=key, seconds_after=3.0)
    wait_for(lambda: (row := effect(key)) is not None and row.applied_at, [worker_a], "effect")
    taken_at = time.monotonic()  # A took the message before this
    first = effect(key)
    assert first is not None

    # when the whole worker is killed, and once the message's 5-second visibility timeout has
    # passed worker B starts (Redis hands a message back when a worker sweeps: B at its start)
    worker_a.kill_all()
    time.sleep(max(0.0, taken_at + VISIBILITY_TIMEOUT + 1 - time.monotonic()))
    assert unacknowledged(broker, task_id)  # Redis still holds the message: nothing is lost
    assert broker.llen(queue) == 0
    worker_b = start_worker(pool="prefork", visibility_timeout=VISIBILITY_TIMEOUT)

    # then B gets the message back, runs the task again, and acknowledges it
    wait_for(lambda: completions(key) == 1, [worker_a, worker_b], "the rerun")
    wait_for(settled(broker, queue, task_id), [worker_b], "the acknowledgement")
    row = effect(key)
    assert row is not None
    assert (row.attempts, row.completions) == (2, 1)  # ran twice, finished once
    assert row.applied_at == first.applied_at  # one effect
    assert f"[{task_id}] received" in worker_b.output()
    assert not TaskFailure.objects.exists()


# --- F3: a task that always fails ------------------------------------------------------------


@real_worker
def test_F3_always_failing_task_stops_after_bounded_attempts_and_is_reported(
    broker: redis.Redis, queue: str, start_worker: Callable[..., Worker]
) -> None:
    # given a worker
    key = f"f3-{uuid.uuid4().hex}"
    worker = start_worker(pool="solo")

    # when the diagnostic task that always fails is sent
    task_id = send(diagnostics_fail_task, queue, key=key)

    # then it runs max_retries + 1 times, gives up, and one failure row reports it
    wait_for(
        lambda: TaskFailure.objects.filter(status=TaskFailureStatus.FAILED).exists(),
        [worker],
        "the failure report",
    )
    wait_for(settled(broker, queue, task_id), [worker], "the acknowledgement")
    time.sleep(1.0)  # a further attempt would come 0.2 s after the last
    attempts = diagnostics_fail_task.max_retries + 1
    assert attempts == 4
    assert effect(key).attempts == attempts  # type: ignore[union-attr]
    failure = TaskFailure.objects.get()
    assert {
        "task_name": failure.task_name,
        "task_id": failure.task_id,
        "status": failure.status,
        "attempts": failure.attempts,
        "arguments": failure.arguments,
        "exception_class": failure.exception_class,
        "exception_message": failure.exception_message,
    } == {
        "task_name": "core.diagnostics_fail",
        "task_id": task_id,
        "status": TaskFailureStatus.FAILED,
        "attempts": attempts,
        "arguments": {"args": [], "kwargs": {"key": key}},
        "exception_class": "core.tasks.DiagnosticTransientError",
        "exception_message": "diagnostic failure on purpose (attempt 4)",
    }
    assert failure.first_failed_at < failure.last_failed_at


def test_F3_every_task_retries_a_bounded_number_of_times() -> None:
    # given every task the workers know, but Celery's own
    app.loader.import_default_modules()
    tasks = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}

    # then each has a finite retry limit, and the tasks that chose their own keep it
    assert {name: type(task.max_retries) for name, task in tasks.items()} == dict.fromkeys(
        tasks, int
    )
    assert all(isinstance(task, BoundedRetryTask) for task in tasks.values())
    limits = {name: task.max_retries for name, task in tasks.items()}
    assert {
        name: limits[name]
        for name in (
            "ledger.ledger_check",
            "billing.billing_run",
            "billing.invoice_deliver",
            "billing.processor_attempts_resolve",
            "core.diagnostics_fail",
        )
    } == {
        "ledger.ledger_check": 3,
        "billing.billing_run": 0,
        "billing.invoice_deliver": 5,
        "billing.processor_attempts_resolve": 3,
        "core.diagnostics_fail": 3,
    }
    assert DEFAULT_MAX_RETRIES == 3


def test_F3_a_task_that_would_retry_forever_is_refused() -> None:
    # when
    with pytest.raises(TypeError, match="would retry forever"):

        @app.task(name="tests.retry_forever", max_retries=None, shared=False)
        def retry_forever() -> None:  # pragma: no cover
            """Never registered."""

        retry_forever.max_retries  # noqa: B018 (a task class is built on first use)

    # then
    assert "tests.retry_forever" not in app.tasks


@pytest.mark.django_db
def test_F3_failure_report_holds_no_secret_or_card_number() -> None:
    # when a task called with a card number and a password fails
    task_failure_record(
        task_name="tests.leaky",
        task_id="t-1",
        args=["4242 4242 4242 4242", "order-1234567890123"],
        kwargs={"password": "hunter2", "api_key": "sk_live_x", "note": "card 4000056655665556"},
        exc=ValueError("declined 4242-4242-4242-4242 for customer 42"),
        attempts=1,
        status=TaskFailureStatus.FAILED,
    )

    # then
    failure = TaskFailure.objects.get(task_id="t-1")
    assert failure.arguments == {
        "args": ["[redacted]", "order-1234567890123"],
        "kwargs": {"password": "[redacted]", "api_key": "[redacted]", "note": "card [redacted]"},
    }
    assert failure.exception_class == "builtins.ValueError"
    assert failure.exception_message == "declined [redacted] for customer 42"


@pytest.mark.django_db
@pytest.mark.parametrize("role", sorted(STAFF_ROLES))
def test_F3_task_failures_are_read_only_for_finance_admin_and_auditor(
    role: str, client_for: Callable[[str], Any]
) -> None:
    # given
    task_failure_record(
        task_name="tests.failed",
        task_id="t-2",
        args=[],
        kwargs={},
        exc=ConnectionError("down"),
        attempts=4,
        status=TaskFailureStatus.FAILED,
    )
    failure = TaskFailure.objects.get()
    client = client_for(role)

    # when
    pages = {
        "list": client.get("/admin/core/taskfailure/").status_code,
        "view": client.get(f"/admin/core/taskfailure/{failure.pk}/change/").status_code,
        "add": client.get("/admin/core/taskfailure/add/").status_code,
        "delete": client.get(f"/admin/core/taskfailure/{failure.pk}/delete/").status_code,
    }

    # then
    can_view = role in (Role.FINANCE_ADMIN, Role.AUDITOR)
    assert pages == {
        "list": 200 if can_view else 403,
        "view": 200 if can_view else 403,
        "add": 403,
        "delete": 403,
    }
    assert TaskFailure.objects.count() == 1
