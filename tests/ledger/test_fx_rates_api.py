"""Issue 11 item 2: FX rates through the API, idempotent per pair, day and source, never
changed once recorded, with roles and bad input as field errors."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.fx import FxRateInvalid, fx_rate_create
from core.ledger.enums import AccountRole
from core.ledger.services import LineSpec, journal_post
from core.models import FxRate
from core.roles import Role
from tests.conftest import token_client, token_for

D = Decimal
URL = "/api/ledger/fx-rates"
DAY = date(2026, 4, 15)
pytestmark = pytest.mark.django_db


def body(**overrides: object) -> dict:
    data = {
        "base_currency": "EUR",
        "quote_currency": "USD",
        "rate": "1.0825",
        "rate_date": DAY.isoformat(),
        "source": "ecb",
    }
    data.update(overrides)
    return data


@pytest.fixture
def controller_api(client_for) -> APIClient:
    return client_for(Role.CONTROLLER)


def rows() -> list[tuple[str, str, Decimal, date, str]]:
    return list(
        FxRate.objects.order_by("pk").values_list(
            "base_currency", "quote_currency", "rate", "rate_date", "source"
        )
    )


def test_a_rate_is_recorded_and_listed(controller_api: APIClient) -> None:
    # when
    created = controller_api.post(URL, body(), format="json")
    # then
    assert created.status_code == 201, created.json()
    rate = FxRate.objects.get()
    assert created.json() == {
        "id": rate.pk,
        "base_currency": "EUR",
        "quote_currency": "USD",
        "rate": "1.0825000000",
        "rate_date": "2026-04-15",
        "source": "ecb",
        "created_at": created.json()["created_at"],
    }
    listed = controller_api.get(URL).json()
    assert listed["count"] == 1
    assert listed["results"] == [created.json()]


def test_the_same_rate_again_returns_the_row_on_record(controller_api: APIClient) -> None:
    # given
    first = controller_api.post(URL, body(), format="json")
    # when the same values come again, the rate written with other trailing zeros
    again = controller_api.post(URL, body(rate="1.08250"), format="json")
    # then
    assert again.status_code == 200
    assert again.json() == first.json()
    assert FxRate.objects.count() == 1


@pytest.mark.parametrize("change", [{"rate": "1.0900"}, {"source": "treasury"}])
def test_another_rate_for_the_same_pair_and_day_is_refused_naming_the_rate_on_record(
    accounts, controller_api: APIClient, change: dict
) -> None:
    # given a rate a posting was converted with
    first = controller_api.post(URL, body(), format="json").json()
    entry = journal_post(
        lines=[
            LineSpec(accounts[AccountRole.EXPENSES], "EUR", debit=D("100.00")),
            LineSpec(accounts[AccountRole.SUSPENSE], "EUR", credit=D("100.00")),
        ],
        entry_date=DAY,
        source="manual",
    )
    # when
    response = controller_api.post(URL, body(**change), format="json")
    # then
    assert response.status_code == 409
    assert response.json()["code"] == "fx_rate_exists"
    assert response.json()["message"] == (
        f"EUR/USD on 2026-04-15 is already recorded: rate 1.0825000000 from 'ecb' (FX rate "
        f"{first['id']}). A recorded rate is never changed; record a correction as a new rate "
        "with its own date."
    )
    assert rows() == [("EUR", "USD", D("1.0825"), DAY, "ecb")]
    assert sorted(entry.lines.values_list("functional_debit", "functional_credit")) == [
        (D(0), D("108.2500")),
        (D("108.2500"), D(0)),
    ]
    # and a correction is a new rate with its own date
    correction = controller_api.post(
        URL, body(rate_date=(DAY + timedelta(days=1)).isoformat(), **change), format="json"
    )
    assert correction.status_code == 201


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"base_currency": "ABC"}, "base_currency"),
        ({"base_currency": "XXX"}, "base_currency"),
        ({"quote_currency": "EURO"}, "quote_currency"),
        ({"quote_currency": "EUR"}, "quote_currency"),
        ({"rate": "0"}, "rate"),
        ({"rate": "-1.1"}, "rate"),
        ({"rate": "NaN"}, "rate"),
        ({"rate": "Infinity"}, "rate"),
        ({"rate": "1e3"}, "rate"),
        ({"rate": 1.0825}, "rate"),
        ({"rate": "1.12345678901"}, "rate"),
        ({"rate": "123456789012345"}, "rate"),
        ({"rate": ""}, "rate"),
        ({"rate_date": "0001-01-01"}, "rate_date"),
        ({"rate_date": "1999-12-31"}, "rate_date"),
        ({"rate_date": "9999-12-31"}, "rate_date"),
        ({"rate_date": "2026-02-30"}, "rate_date"),
        ({"source": "x" * 61}, "source"),
        ({"source": ""}, "source"),
    ],
)
def test_bad_input_is_a_field_error_and_records_nothing(
    controller_api: APIClient, overrides: dict, field: str
) -> None:
    response = controller_api.post(URL, body(**overrides), format="json")
    assert response.status_code == 400, response.json()
    assert list(response.json()["errors"]) == [field]
    assert FxRate.objects.count() == 0


def test_a_rate_too_far_ahead_is_refused_with_the_window(controller_api: APIClient) -> None:
    too_late = timezone.localdate() + timedelta(days=367)
    response = controller_api.post(URL, body(rate_date=too_late.isoformat()), format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "date_out_of_range"
    assert list(response.json()["errors"]) == ["rate_date"]
    assert FxRate.objects.count() == 0


def test_the_service_checks_what_the_api_does(make_user) -> None:
    admin = make_user(Role.FINANCE_ADMIN)
    with pytest.raises(FxRateInvalid) as too_fine:
        fx_rate_create(
            actor=admin,
            base_currency="EUR",
            quote_currency="USD",
            rate=D("1.00000000001"),
            rate_date=DAY,
        )
    assert too_fine.value.field == "rate"
    with pytest.raises(FxRateInvalid) as nan:
        fx_rate_create(
            actor=admin, base_currency="EUR", quote_currency="USD", rate=D("NaN"), rate_date=DAY
        )
    assert nan.value.field == "rate"
    rate, created = fx_rate_create(
        actor=admin, base_currency="EUR", quote_currency="USD", rate=D("1.1"), rate_date=DAY
    )
    assert (created, rate.source) == (True, "manual")
    assert FxRate.objects.count() == 1


def test_the_list_filters_by_pair_and_dates_and_paginates(controller_api: APIClient) -> None:
    # given
    for base, quote, rate, day in [
        ("EUR", "USD", "1.08", DAY),
        ("EUR", "USD", "1.09", DAY + timedelta(days=1)),
        ("GBP", "USD", "1.27", DAY),
        ("USD", "JPY", "151.5", DAY + timedelta(days=2)),
    ]:
        created = controller_api.post(
            URL,
            body(base_currency=base, quote_currency=quote, rate=rate, rate_date=day.isoformat()),
            format="json",
        )
        assert created.status_code == 201

    def listed(query: str) -> list[tuple[str, str, str]]:
        data = controller_api.get(f"{URL}?{query}").json()
        return [(r["base_currency"], r["quote_currency"], r["rate_date"]) for r in data["results"]]

    # then
    assert listed("") == [
        ("USD", "JPY", "2026-04-17"),
        ("EUR", "USD", "2026-04-16"),
        ("EUR", "USD", "2026-04-15"),
        ("GBP", "USD", "2026-04-15"),
    ]
    assert listed("base_currency=eur") == [
        ("EUR", "USD", "2026-04-16"),
        ("EUR", "USD", "2026-04-15"),
    ]
    assert listed("quote_currency=USD&date_from=2026-04-16") == [("EUR", "USD", "2026-04-16")]
    assert listed("date_to=2026-04-15") == [
        ("EUR", "USD", "2026-04-15"),
        ("GBP", "USD", "2026-04-15"),
    ]
    page = controller_api.get(f"{URL}?page_size=1&page=2").json()
    assert (page["count"], len(page["results"])) == (4, 1)
    assert page["results"][0]["rate_date"] == "2026-04-16"
    bad = controller_api.get(f"{URL}?base_currency=ABC&date_from=15/04/2026")
    assert bad.status_code == 400
    assert set(bad.json()["errors"]) == {"base_currency", "date_from"}


WRITERS = {Role.FINANCE_ADMIN, Role.CONTROLLER, Role.INTEGRATION}


@pytest.mark.parametrize("role", list(Role))
def test_every_role_reads_and_only_admins_controllers_and_integrations_record(
    role: Role, client_for, make_user
) -> None:
    # given
    if role == Role.INTEGRATION:
        user = make_user(role, mfa=False)
        client = token_client(token_for(user))
    else:
        client = client_for(role)
    # when
    read = client.get(URL)
    write = client.post(URL, body(), format="json")
    # then
    assert read.status_code == 200
    assert write.status_code == (201 if role in WRITERS else 403)
    assert FxRate.objects.count() == (1 if role in WRITERS else 0)


def test_anonymous_and_staff_without_a_second_factor_are_refused(client, make_user) -> None:
    assert client.get(URL).status_code in (401, 403)
    assert client.post(URL, body(), content_type="application/json").status_code in (401, 403)
    unverified = APIClient()
    unverified.force_login(make_user(Role.CONTROLLER, mfa=False))
    assert unverified.get(URL).status_code == 403
    assert unverified.post(URL, body(), format="json").status_code == 403
    assert FxRate.objects.count() == 0


def test_the_schema_describes_the_endpoint(client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operations = schema["paths"]["/api/ledger/fx-rates"]
    assert set(operations) >= {"get", "post"}
    assert set(operations["post"]["responses"]) >= {"200", "201"}
    assert {p["name"] for p in operations["get"]["parameters"]} >= {
        "base_currency",
        "quote_currency",
        "date_from",
        "date_to",
        "page",
    }
