"""The Celery application: Redis broker, settings from Django (``CELERY_*``), app tasks.

Every task's retries are bounded (``BoundedRetryTask``), and a task that fails is reported as a
``core.TaskFailure`` row by the signal receivers below (RELIABILITY.md F3). The receivers are
infrastructure, like logging: they record what happened to a task, never business state.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from celery import Celery, Task
from celery.signals import task_failure, task_retry, task_success

from core import card_numbers

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")

logger = logging.getLogger(__name__)

# A task that sets no retry policy of its own retries at most this many times.
DEFAULT_MAX_RETRIES = 3


class BoundedRetryTask(Task):
    """The base of every task: bounded retries with exponential backoff and jitter.

    A task may choose its own ``max_retries`` (``0`` for none) but never ``None``, which would
    retry forever; Celery's own built-in tasks (``celery.*``) are left as they are.
    """

    max_retries: int | None = DEFAULT_MAX_RETRIES
    retry_backoff: bool | int = True
    retry_backoff_max = 10 * 60
    retry_jitter = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = str(cls.__dict__.get("name") or "")
        if name and cls.max_retries is None and not name.startswith("celery."):
            raise TypeError(f"Task {name} would retry forever: give it a max_retries")


app = Celery("backoffice", task_cls=BoundedRetryTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# --- Failure reports (F3) -----------------------------------------------------------------

MAX_TEXT = 2000
_SECRET_NAME = re.compile(
    r"pass(word|wd)?|secret|token|api_?key|private_?key|auth|cookie|session|card|cvc|cvv|pan$"
    r"|iban|account_number",
    re.IGNORECASE,
)
REDACTED = "[redacted]"


def mask_card_numbers(text: str) -> str:
    """``text`` with every card number in it removed (``core.card_numbers``)."""
    return card_numbers.mask_card_numbers(text, replacement=REDACTED)


def redact(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of task arguments: secret-named fields and card numbers masked,
    long text cut, anything else shown by a shortened ``repr``."""
    if depth > 5:
        return "..."
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return mask_card_numbers(value[:MAX_TEXT])
    if isinstance(value, dict):
        return {
            str(key): REDACTED if _SECRET_NAME.search(str(key)) else redact(item, depth + 1)
            for key, item in list(value.items())[:50]
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(item, depth + 1) for item in list(value)[:50]]
    return mask_card_numbers(repr(value)[:200])


def task_failure_record(
    *,
    task_name: str,
    task_id: str,
    args: Any,
    kwargs: Any,
    exc: BaseException | None,
    attempts: int,
    status: str,
) -> None:
    """Create or update the task's failure row. Never raises: a report that cannot be written
    is logged, and the worker carries on handling the task's message."""
    from django.db import transaction
    from django.utils import timezone

    from core.models import TaskFailure

    now = timezone.now()
    values: dict[str, Any] = {
        "task_name": task_name[:200],
        "arguments": {"args": redact(list(args or ())), "kwargs": redact(dict(kwargs or {}))},
        "attempts": max(attempts, 1),
        "status": status,
        "last_failed_at": now,
    }
    if exc is not None:
        exc_type = type(exc)
        values["exception_class"] = f"{exc_type.__module__}.{exc_type.__qualname__}"[:255]
        values["exception_message"] = mask_card_numbers(str(exc)[:MAX_TEXT])
    try:
        with transaction.atomic():
            row = TaskFailure.objects.select_for_update().filter(task_id=task_id).first()
            if row is None:
                TaskFailure.objects.create(task_id=task_id, first_failed_at=now, **values)
            else:
                TaskFailure.objects.filter(pk=row.pk).update(**values)
    except Exception:
        logger.exception("Could not record the failure of task %s[%s]", task_name, task_id)


def _reported(task: Task) -> bool:
    # An eager task's exception reaches its caller, who handles it.
    return not getattr(task.request, "is_eager", False)


@task_retry.connect
def _on_task_retry(sender: Task, request: Any, reason: Any, **_: Any) -> None:
    if not _reported(sender):
        return
    from core.models import TaskFailureStatus

    # ``reason`` is Celery's Retry, which carries the exception that caused it.
    exc = getattr(reason, "exc", None) or reason
    task_failure_record(
        task_name=sender.name,
        task_id=request.id,
        args=request.args,
        kwargs=request.kwargs,
        exc=exc if isinstance(exc, BaseException) else None,
        attempts=(request.retries or 0) + 1,
        status=TaskFailureStatus.RETRYING,
    )


@task_failure.connect
def _on_task_failure(
    sender: Task, task_id: str, exception: BaseException, args: Any, kwargs: Any, **_: Any
) -> None:
    if not _reported(sender):
        return
    from core.models import TaskFailureStatus

    task_failure_record(
        task_name=sender.name,
        task_id=task_id,
        args=args,
        kwargs=kwargs,
        exc=exception,
        attempts=(sender.request.retries or 0) + 1,
        status=TaskFailureStatus.FAILED,
    )


@task_success.connect
def _on_task_success(sender: Task, **_: Any) -> None:
    request = sender.request
    if not request.retries or not _reported(sender):
        return
    from core.models import TaskFailure, TaskFailureStatus

    try:
        TaskFailure.objects.filter(task_id=request.id).update(
            status=TaskFailureStatus.RECOVERED, attempts=request.retries + 1
        )
    except Exception:
        logger.exception("Could not record the recovery of task %s[%s]", sender.name, request.id)
