"""Every date the API reads is YYYY-MM-DD (RFC 3339 full-date, the schema's ``format: date``).

Python's parsers also take 20261207, 2026-W49-1 (an ISO week date: 30 November), 2026-1-5,
a trailing newline and non-ASCII digits; DRF's DateField passed all of them on. Each is now a
400 naming the field, in a query string and in a body alike.
"""

from __future__ import annotations

import importlib

import pytest
from django.urls import get_resolver
from django.utils import timezone
from rest_framework import serializers

from core.api.fields import DateField
from core.roles import Role
from tests.conftest import verified_client

NOT_DATES = [
    "",
    "20261207",
    "2026-W49-1",
    "2026W491",
    "2026-1-5",
    "2026-12-07\n",
    " 2026-12-07",
    "2026-12-07T00:00:00",
    "\u0662\u0660\u0662\u0666-\u0661\u0662-\u0660\u0667",  # Arabic-Indic digits
    "\uff12\uff10\uff12\uff16-\uff11\uff12-\uff10\uff17",  # full-width digits
]


@pytest.mark.parametrize("value", NOT_DATES)
@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/ledger/journal-entries?date_from={}", "date_from"),
        ("/api/ledger/fx-rates?date_to={}", "date_to"),
        ("/api/reporting/balance-sheet?as_of={}", "as_of"),
    ],
)
def test_a_query_date_that_is_not_yyyy_mm_dd_is_a_400_naming_it(
    make_user, path: str, field: str, value: str
) -> None:
    # given
    client = verified_client(make_user(Role.CONTROLLER))
    # when
    response = client.get(path.format(value.replace("\n", "%0A").replace(" ", "%20")))
    # then
    assert response.status_code == 400, response.content
    assert field in str(response.json()), response.json()


@pytest.mark.parametrize("value", NOT_DATES)
def test_a_body_date_that_is_not_yyyy_mm_dd_is_a_400_and_posts_nothing(make_user, value) -> None:
    # given
    from core.ledger.models import JournalEntry

    client = verified_client(make_user(Role.CONTROLLER))
    before = JournalEntry.objects.count()
    body = {
        "entry_date": value,
        "description": "accrual",
        "lines": [
            {"account": "1000", "debit": "10.00", "currency": "USD"},
            {"account": "4000", "credit": "10.00", "currency": "USD"},
        ],
    }
    # when
    response = client.post("/api/ledger/journal-entries", body, format="json")
    # then
    assert response.status_code == 400, response.content
    assert "entry_date" in str(response.json()), response.json()
    assert JournalEntry.objects.count() == before


def test_a_yyyy_mm_dd_date_is_read_as_that_day(make_user) -> None:
    # given
    client = verified_client(make_user(Role.CONTROLLER))
    today = timezone.localdate().isoformat()
    # when
    response = client.get(f"/api/reporting/balance-sheet?as_of={today}")
    # then
    assert response.status_code == 200, response.content
    assert today in response.content.decode()


def test_every_declared_date_input_of_the_api_is_the_strict_field() -> None:
    # given: every serializer the URLconf's views can reach is imported
    modules = {
        getattr(pattern.callback, "__module__", "")
        for pattern in _walk(get_resolver().url_patterns)
    }
    for module in modules:
        if module:
            importlib.import_module(module)
    # when
    loose = [
        f"{cls.__module__}.{cls.__qualname__}.{name}"
        for cls in _subclasses(serializers.BaseSerializer)
        for name, field in getattr(cls, "_declared_fields", {}).items()
        if isinstance(field, serializers.DateField) and not isinstance(field, DateField)
    ]
    # then
    assert not loose, loose


def _walk(patterns):
    for pattern in patterns:
        if hasattr(pattern, "url_patterns"):
            yield from _walk(pattern.url_patterns)
        else:
            yield pattern


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)
