"""Outbound events delivered per second by real Celery workers to a local receiver, and the
lag from commit to delivery at a steady 200 events/s (issue 14 section 4).

    .venv/bin/python bench/outbox.py [--quick] [--events N] [--keep]

Creates its own database (``<name of DATABASE_URL>_bench``) like bench/ledger_post.py,
migrates it, starts a receiver (its own process: a threaded HTTP/1.1 server answering 200 and
noting when each event arrived) and a Celery worker (``-c 2``, the project's app, Redis db 11
as broker), measures, and drops the database. Rows, in the same run:

- one at a time: a sample of events sent by ``deliveries_send(limit=1)`` with one thread,
  in this process: claim, sign, POST, record, for each event in turn;
- outbox: N events (100,000; 20,000 with --quick) written with their deliveries, then sent
  by the worker's ``events.send`` tasks (queued each second while any is due, as the commit
  kicks and the 15 s beat do): events/s from the first task to the last delivery;
- steady: 200 events/s for 20 s, each committed in its own transaction with the kick that
  ``event_emit`` queues on commit; the lag of each from its commit (its ``created_at``) to
  its arrival at the receiver: p50, p99, max.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ledger_post import DEFAULT_URL, bench_url, recreate_database  # noqa: E402

GOAL_RATE = 1_000
GOAL_P99_LAG = 2.0
STEADY_RATE = 200
STEADY_SECONDS = 20
BROKER = "redis://127.0.0.1:6379/11"


# --- the receiver: a process of its own --------------------------------------------------------


def _receiver(port_out: Any, stop: Any, log_path: str) -> None:
    arrivals: list[tuple[str, float]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            arrivals.append((self.headers.get("Webhook-Id", ""), time.time()))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_out.send(server.server_address[1])
    import threading

    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    stop.wait()
    server.shutdown()
    Path(log_path).write_text(json.dumps(arrivals))


@dataclass(slots=True)
class Result:
    name: str
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def _emit(n: int, *, offset: int = 0, chunk: int = 5_000) -> None:
    from django.db import transaction

    from core.events.services import EventInput, events_emit

    for start in range(0, n, chunk):
        with transaction.atomic():
            events_emit(
                [
                    EventInput(
                        "invoice.paid",
                        "invoice",
                        offset + i,
                        {"id": offset + i, "amount_due": "0.00", "total": f"{100 + i % 900}.00"},
                    )
                    for i in range(start, min(start + chunk, n))
                ]
            )


def _pending() -> int:
    from core.events.models import Delivery, DeliveryStatus

    return Delivery.objects.filter(status=DeliveryStatus.PENDING).count()


def _worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "core",
            "worker",
            "-c",
            "2",
            "-Q",
            "celery",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def run(args: argparse.Namespace, env: dict[str, str]) -> tuple[list[Result], dict[str, float]]:
    from core.events.models import Delivery, DeliveryStatus, Event, WebhookEndpoint
    from core.events.services import deliveries_send
    from core.events.tasks import events_send

    parent, child = multiprocessing.Pipe()
    stop = multiprocessing.Event()
    log = Path(tempfile.mkdtemp(prefix="bench_outbox_")) / "arrivals.json"
    receiver = multiprocessing.Process(target=_receiver, args=(child, stop, str(log)))
    receiver.start()
    port = parent.recv()
    WebhookEndpoint.objects.create(url=f"http://127.0.0.1:{port}/hooks")
    results: list[Result] = []

    # one at a time, in this process
    _emit(args.naive, offset=10_000_000)
    started = time.perf_counter()
    while deliveries_send(limit=1).delivered:
        pass
    results.append(Result("one at a time", args.naive, time.perf_counter() - started))

    # the outbox through the worker
    print(f"Writing {args.events:,} events ...", flush=True)
    _emit(args.events)
    worker = _worker(env)
    try:
        time.sleep(3)  # the worker's processes start
        started = time.perf_counter()
        deadline = started + 900
        while time.perf_counter() < deadline:
            remaining = _pending()
            if not remaining:
                break
            events_send.delay()
            events_send.delay()
            time.sleep(1)
        elapsed = time.perf_counter() - started
        sent = Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() - args.naive
        results.append(Result("outbox (Celery, -c 2)", sent, elapsed))

        # steady 200/s, each event committed and kicked as event_emit does
        from django.db import transaction

        from core.events.services import event_emit

        print(f"Steady {STEADY_RATE}/s for {STEADY_SECONDS} s ...", flush=True)
        first = Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        begin = time.perf_counter()
        for n in range(STEADY_RATE * STEADY_SECONDS):
            due = begin + n / STEADY_RATE
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            with transaction.atomic():
                event_emit(
                    type="payment.succeeded",
                    object_type="payment",
                    object_id=20_000_000 + n,
                    data={"id": 20_000_000 + n, "amount": "10.00"},
                )
        deadline = time.perf_counter() + 60
        while _pending() and time.perf_counter() < deadline:
            time.sleep(0.2)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        stop.set()
        receiver.join(timeout=30)
    arrivals = dict(json.loads(log.read_text()))
    log.unlink()
    log.parent.rmdir()
    lags = sorted(
        arrivals[public_id] - created.timestamp()
        for public_id, created in Event.objects.filter(pk__gt=first).values_list(
            "public_id", "created_at"
        )
        if public_id in arrivals
    )
    steady = {
        "events": float(STEADY_RATE * STEADY_SECONDS),
        "arrived": float(len(lags)),
        "p50": lags[len(lags) // 2] if lags else float("nan"),
        "p99": lags[int(len(lags) * 0.99)] if lags else float("nan"),
        "max": lags[-1] if lags else float("nan"),
    }
    return results, steady


def report(results: list[Result], steady: dict[str, float]) -> str:
    naive, outbox = results
    all_arrived = steady["arrived"] == steady["events"]
    lines = [
        f"{'row':<24}{'events':>10}{'seconds':>10}{'events/s':>11}{'vs one at a time':>18}",
    ]
    for r in results:
        lines.append(
            f"{r.name:<24}{r.events:>10,}{r.seconds:>10.2f}{r.rate:>11,.0f}"
            f"{r.rate / naive.rate:>17.1f}x"
        )
    lines.append(
        f"\ngoal >= {GOAL_RATE:,} events/s: " + ("met" if outbox.rate >= GOAL_RATE else "MISSED")
    )
    lines.append(
        f"steady {STEADY_RATE}/s: {steady['arrived']:,.0f} of {steady['events']:,.0f} arrived; "
        f"lag from commit p50 {steady['p50']:.3f} s, p99 {steady['p99']:.3f} s, "
        f"max {steady['max']:.3f} s; goal p99 < {GOAL_P99_LAG} s: "
        + ("met" if steady["p99"] < GOAL_P99_LAG and all_arrived else "MISSED")
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 events instead of 100,000")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--events", type=int, help="events sent through the outbox")
    args = parser.parse_args()
    args.naive = 500 if args.quick else 2_000
    args.events = args.events or (20_000 if args.quick else 100_000)

    url, name, maintenance = bench_url(os.environ.get("DATABASE_URL") or DEFAULT_URL)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["CELERY_BROKER_URL"] = BROKER
    os.environ["WEBHOOK_ALLOW_PRIVATE_ADDRESSES"] = "true"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "core.settings"}
    recreate_database(maintenance, name)
    try:
        import django
        from django.core.management import call_command
        from django.db import connections

        django.setup()
        print(f"Migrating {name} ...", flush=True)
        call_command("migrate", verbosity=0, interactive=False)
        import redis

        redis.Redis.from_url(BROKER).flushdb()
        try:
            results, steady = run(args, env)
        finally:
            connections.close_all()
    finally:
        if not args.keep:
            recreate_database(maintenance, name, drop_only=True)
    print(f"\nOutbound events to a local receiver ({name}):\n")
    print(report(results, steady))
    print("\nAll rows ran in this run, one after the other: on a busy machine compare the ratio.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
