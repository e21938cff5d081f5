"""Bulk writes that keep what ``save()`` would write: rows through PostgreSQL's COPY with
each value prepared as ``save()`` prepares it, and django-simple-history's rows for them
(bulk writes keep the audit trail: STYLE.md lesson 3). Shared by the billing run and batch
payments."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Field, Model
from django.utils import timezone
from simple_history.utils import bulk_update_with_history


def copy_insert(
    model: type[Model],
    objs: Sequence[Model],
    *,
    with_pk: bool,
    history_type: str | None = None,
    actor: Any = None,
) -> None:
    """Insert ``objs`` through COPY, each value prepared as ``save()`` prepares it, and
    their history rows when ``history_type`` is given. ``with_pk``: the objects carry their
    ids; otherwise the database gives them (and the objects stay without)."""
    fields, rows = db_rows(model, objs, add=True)
    keep = [n for n, f in enumerate(fields) if with_pk or not f.primary_key]
    copy_rows(model, [fields[n] for n in keep], ([row[n] for n in keep] for row in rows))
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
    if history_type:
        history_rows(model, fields, rows, history_type=history_type, actor=actor)


def history_insert(
    model: type[Model], objs: Sequence[Model], *, history_type: str, actor: Any
) -> None:
    """The history rows of ``objs`` as they are now (saved by a bulk statement)."""
    fields, rows = db_rows(model, objs, add=False)
    history_rows(model, fields, rows, history_type=history_type, actor=actor)


def update_with_history(
    model: type[Model], objs: Sequence[Model], names: Sequence[str], *, actor: Any = None
) -> None:
    """Save the ``names`` fields of ``objs`` (changed in memory) and add their history rows
    ("~"), as ``save(update_fields=names)`` would for each: on PostgreSQL in one UPDATE and
    one COPY, elsewhere through django-simple-history's ``bulk_update_with_history``."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        bulk_update_with_history(objs, model, list(names), default_user=actor)
        return
    fields, rows = db_rows(model, objs, add=False)
    update_rows(model, names, rows)
    history_rows(model, fields, rows, history_type="~", actor=actor)


def update_rows(model: type[Model], names: Sequence[str], rows: list[list[Any]]) -> None:
    """PostgreSQL: set the ``names`` columns of each row (a full row as ``db_rows`` gives it,
    its id first) in one statement."""
    if not rows:
        return
    fields = list(model._meta.concrete_fields)
    position = {f.name: n for n, f in enumerate(fields)}
    chosen = [fields[position[name]] for name in ("id", *names)]
    quote = connection.ops.quote_name
    columns = [quote(f.column) for f in chosen]
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in chosen)
    sets = ", ".join(f"{c} = v.{c}" for c in columns[1:])
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(model._meta.db_table)} AS t SET {sets} "  # noqa: S608  # nosec B608  # model table and columns, quoted; values bound
            f"FROM UNNEST({arrays}) AS v({', '.join(columns)}) WHERE t.id = v.id",
            [[row[position[f.name]] for row in rows] for f in chosen],
        )


def db_rows(
    model: type[Model], objs: Sequence[Model], *, add: bool
) -> tuple[list[Field[Any, Any]], list[list[Any]]]:
    fields = list(model._meta.concrete_fields)
    # The connection itself, not the thread-local proxy it is reached through.
    db = transaction.get_connection()
    return fields, [
        [field.get_db_prep_save(field.pre_save(obj, add), db) for field in fields] for obj in objs
    ]


def history_rows(
    model: type[Model],
    fields: list[Field[Any, Any]],
    rows: list[list[Any]],
    *,
    history_type: str,
    actor: Any,
) -> None:
    """The django-simple-history rows ``save()`` would add (created "+", changed "~"),
    through COPY: bulk writes keep the audit trail (STYLE.md lesson 3)."""
    if not getattr(settings, "SIMPLE_HISTORY_ENABLED", True):
        return
    history = model.history.model  # type: ignore[attr-defined]
    tracked = {field.attname for field in history.tracked_fields}
    stamps = {
        "history_date": timezone.now(),
        "history_change_reason": None,
        "history_type": history_type,
        "history_user_id": (actor.pk if getattr(actor, "pk", None) else None),
    }
    position = {field.attname: n for n, field in enumerate(fields)}
    columns = [
        f for f in history._meta.concrete_fields if f.attname in tracked or f.attname in stamps
    ]
    sources = [position[f.attname] if f.attname in tracked else None for f in columns]
    values = [stamps.get(f.attname) for f in columns]
    copy_rows(
        history,
        columns,
        (
            [row[n] if n is not None else value for n, value in zip(sources, values, strict=True)]
            for row in rows
        ),
    )


def copy_rows(
    model: type[Model], fields: Sequence[Field[Any, Any]], rows: Iterable[list[Any]]
) -> None:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
