from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from rest_framework.test import APIClient

from core.ledger.enums import AccountRole
from core.ledger.models import Account, JournalEntry, JournalLine, PeriodLock
from core.ledger.selectors import account_get_by_role
from core.ledger.services import LineSpec, journal_post
from core.models import FxRate
from core.otp import AuthenticatorDevice
from core.roles import STAFF_ROLES, Role
from tests.conftest import verified_client

pytestmark = pytest.mark.django_db

ADMIN_MODELS = sorted(
    f"{model._meta.app_label}.{model._meta.model_name}" for model in admin.site._registry
)


def changelist_url(label: str) -> str:
    return reverse("admin:{}_{}_changelist".format(*label.split(".")))


def post_sale(amount: str = "100.00", key: str = "test:sale") -> JournalEntry:
    return journal_post(
        lines=[
            LineSpec(
                account=account_get_by_role(AccountRole.CASH), currency="USD", debit=Decimal(amount)
            ),
            LineSpec(
                account=account_get_by_role(AccountRole.REVENUE),
                currency="USD",
                credit=Decimal(amount),
            ),
        ],
        entry_date=timezone.localdate(),
        description="Cash sale",
        # Manual: a document's entry is reversed only through its document (issue 11).
        source="manual",
        idempotency_key=key,
    )


def line_amounts(entry: JournalEntry) -> list[tuple[str, Decimal, Decimal]]:
    return list(entry.lines.values_list("account__code", "debit", "credit"))


# --- Second factor ------------------------------------------------------------------------


def test_A3_staff_without_verified_second_factor_is_sent_to_login_everywhere(
    make_user: Callable[..., User],
) -> None:
    # given a finance admin signed in by password only (the session is not OTP-verified)
    client = Client()
    client.force_login(make_user(Role.FINANCE_ADMIN))
    urls = ["/admin/", *(changelist_url(label) for label in ADMIN_MODELS)]

    # when
    responses = {url: client.get(url) for url in urls}

    # then
    assert {url: (r.status_code, r["Location"]) for url, r in responses.items()} == {
        url: (302, f"/admin/login/?next={url}") for url in urls
    }


def test_login_page_asks_for_a_code() -> None:
    # when
    response = Client().get("/admin/login/")

    # then
    assert response.status_code == 200
    assert 'name="otp_token"' in response.content.decode()


def test_login_page_never_echoes_the_password_after_a_wrong_code(
    make_user: Callable[..., User],
) -> None:
    # given
    user = make_user(Role.FINANCE_ADMIN, username="erin")
    device = AuthenticatorDevice.objects.get(user=user)
    wrong = f"{(totp(device.bin_key) + 1) % 1_000_000:06d}"

    # when
    response = Client().post(
        "/admin/login/",
        {"username": "erin", "password": "correct horse battery staple", "otp_token": wrong},
    )

    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert "Invalid token. Please make sure you have entered it correctly." in html
    assert "correct horse battery staple" not in html


# --- Roles --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", sorted(STAFF_ROLES))
def test_each_role_reaches_exactly_the_changelists_its_permissions_allow(
    role: str, make_user: Callable[..., User]
) -> None:
    # given
    user = make_user(role)
    client = verified_client(user)

    # when
    statuses = {label: client.get(changelist_url(label)).status_code for label in ADMIN_MODELS}

    # then
    expected = {
        label: 200
        if user.has_perm("{}.view_{}".format(*label.split(".")))
        or user.has_perm("{}.change_{}".format(*label.split(".")))
        else 403
        for label in ADMIN_MODELS
    }
    assert statuses == expected
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize(
    ("role", "url", "status"),
    [
        (Role.AUDITOR, "/admin/ledger/journalentry/", 200),
        (Role.AUDITOR, "/admin/ledger/account/", 200),
        (Role.AUDITOR, "/admin/ledger/account/add/", 403),
        (Role.AUDITOR, "/admin/ledger/periodlock/add/", 403),
        (Role.AUDITOR, "/admin/core/fxrate/add/", 403),
        (Role.AR_CLERK, "/admin/ledger/journalentry/", 403),
        (Role.AR_CLERK, "/admin/ledger/account/", 200),
        (Role.AR_CLERK, "/admin/core/fxrate/", 200),
        (Role.AR_CLERK, "/admin/ledger/periodlock/", 403),
        (Role.AP_CLERK, "/admin/ledger/journalentry/", 403),
        (Role.AP_CLERK, "/admin/auth/user/", 403),
        (Role.APPROVER, "/admin/ledger/account/", 200),
        # Every staff role reads FX rates (issue 11: GET /api/ledger/fx-rates); only some add.
        (Role.APPROVER, "/admin/core/fxrate/", 200),
        (Role.APPROVER, "/admin/core/fxrate/add/", 403),
        (Role.CONTROLLER, "/admin/ledger/periodlock/add/", 200),
        (Role.CONTROLLER, "/admin/core/fxrate/add/", 200),
        (Role.CONTROLLER, "/admin/ledger/account/add/", 403),
        (Role.FINANCE_ADMIN, "/admin/ledger/periodlock/add/", 200),
        (Role.FINANCE_ADMIN, "/admin/ledger/account/add/", 200),
        (Role.FINANCE_ADMIN, "/admin/ledger/journalentry/add/", 403),
        (Role.FINANCE_ADMIN, "/admin/auth/user/", 200),
        (Role.FINANCE_ADMIN, "/admin/knox/authtoken/", 403),
    ],
)
def test_role_page_access(
    role: str, url: str, status: int, client_for: Callable[[str], APIClient]
) -> None:
    # given
    client = client_for(role)

    # when
    response = client.get(url)

    # then
    assert response.status_code == status


# --- Journal entries ----------------------------------------------------------------------


def test_journal_line_has_no_admin_page_at_all() -> None:
    # then
    assert JournalLine not in admin.site._registry
    assert "ledger.journalline" not in ADMIN_MODELS


def test_posted_entry_is_read_only_even_for_a_superuser() -> None:
    # given
    entry = post_sale()
    superuser = User.objects.create_superuser("root", "root@example.com", "x" * 16)
    AuthenticatorDevice.objects.create(user=superuser, name="phone", confirmed=True)
    client = verified_client(superuser)
    url = reverse("admin:ledger_journalentry_change", args=[entry.pk])

    # when
    page = client.get(url)
    post = client.post(
        url,
        {
            "entry_date": "2000-01-01",
            "description": "edited",
            "lines-TOTAL_FORMS": "2",
            "lines-INITIAL_FORMS": "2",
            "lines-0-id": str(entry.lines.first().pk),  # type: ignore[union-attr]
            "lines-0-debit": "999.00",
            "_save": "Save",
        },
    )

    # then
    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="_save"' not in html
    assert 'name="_continue"' not in html
    assert "Delete" not in html
    assert "100.00 USD" in html
    assert post.status_code == 403
    entry.refresh_from_db()
    assert entry.description == "Cash sale"
    assert line_amounts(entry) == [
        ("1000", Decimal("100.0000"), Decimal("0.0000")),
        ("4000", Decimal("0.0000"), Decimal("100.0000")),
    ]
    assert client.get(f"/admin/ledger/journalentry/{entry.pk}/delete/").status_code == 403
    assert client.get("/admin/ledger/journalline/").status_code == 404


def test_changelist_shows_who_posted_and_the_reversal_links(
    finance_admin: User,
) -> None:
    # given
    entry = post_sale()
    client = verified_client(finance_admin)
    client.post(f"/admin/ledger/journalentry/{entry.pk}/reverse/", {"reason": "Posted twice"})
    reversal = JournalEntry.objects.get(reversal_of=entry)

    # when
    response = client.get("/admin/ledger/journalentry/")

    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert (
        f'<a href="/admin/ledger/journalentry/{reversal.pk}/change/">JE-{reversal.pk}</a>' in html
    )
    assert f'<a href="/admin/ledger/journalentry/{entry.pk}/change/">JE-{entry.pk}</a>' in html
    assert finance_admin.username in html


def test_reverse_asks_for_a_reason_then_posts_the_mirror_entry(finance_admin: User) -> None:
    # given
    entry = post_sale()
    client = verified_client(finance_admin)
    url = f"/admin/ledger/journalentry/{entry.pk}/reverse/"
    change_page = client.get(f"/admin/ledger/journalentry/{entry.pk}/change/").content.decode()

    # when
    confirm = client.get(url)
    without_reason = client.post(url, {"reason": ""})
    done = client.post(url, {"reason": "Posted to the wrong customer"})

    # then
    assert f'href="{url}"' in change_page
    assert confirm.status_code == 200
    assert "Post the reversing entry" in confirm.content.decode()
    assert without_reason.status_code == 200
    assert "This field is required." in without_reason.content.decode()
    reversal = JournalEntry.objects.get(reversal_of=entry)
    assert done.status_code == 302
    assert done["Location"] == f"/admin/ledger/journalentry/{reversal.pk}/change/"
    assert reversal.description == f"Reversal of JE-{entry.pk}: Posted to the wrong customer"
    assert reversal.created_by == finance_admin
    assert line_amounts(reversal) == [
        ("1000", Decimal("0.0000"), Decimal("100.0000")),
        ("4000", Decimal("100.0000"), Decimal("0.0000")),
    ]
    assert line_amounts(entry) == [
        ("1000", Decimal("100.0000"), Decimal("0.0000")),
        ("4000", Decimal("0.0000"), Decimal("100.0000")),
    ]


def test_reversing_twice_reports_the_refusal_and_posts_nothing(finance_admin: User) -> None:
    # given
    entry = post_sale()
    client = verified_client(finance_admin)
    url = f"/admin/ledger/journalentry/{entry.pk}/reverse/"
    client.post(url, {"reason": "Duplicate"}, follow=True)

    # when
    again = client.post(url, {"reason": "Duplicate"}, follow=True)

    # then
    assert [str(m) for m in again.context["messages"]] == [
        f"JE-{entry.pk} has already been reversed."
    ]
    assert JournalEntry.objects.count() == 2


def test_auditor_sees_entries_but_cannot_reverse(client_for: Callable[[str], APIClient]) -> None:
    # given
    entry = post_sale()
    client = client_for(Role.AUDITOR)

    # when
    page = client.get(f"/admin/ledger/journalentry/{entry.pk}/change/")
    reverse_post = client.post(f"/admin/ledger/journalentry/{entry.pk}/reverse/", {"reason": "x"})

    # then
    assert page.status_code == 200
    assert "/reverse/" not in page.content.decode()
    assert reverse_post.status_code == 403
    assert JournalEntry.objects.count() == 1


# --- Period locks, FX rates, accounts -----------------------------------------------------


def test_finance_admin_adds_a_period_lock_through_the_service(finance_admin: User) -> None:
    # given
    client = verified_client(finance_admin)

    # when
    response = client.post(
        "/admin/ledger/periodlock/add/",
        {"lock_date": "2025-01-31", "reason": "January closed", "_save": "Save"},
    )

    # then
    assert response.status_code == 302
    lock = PeriodLock.objects.get()
    assert (str(lock.lock_date), lock.reason, lock.created_by) == (
        "2025-01-31",
        "January closed",
        finance_admin,
    )
    page = client.get(f"/admin/ledger/periodlock/{lock.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    assert client.get(f"/admin/ledger/periodlock/{lock.pk}/delete/").status_code == 403


def test_fx_rate_added_through_the_admin_is_recorded_with_history(
    client_for: Callable[[str], APIClient],
) -> None:
    # given
    client = client_for(Role.CONTROLLER)

    # when
    response = client.post(
        "/admin/core/fxrate/add/",
        {
            "base_currency": "EUR",
            "quote_currency": "USD",
            "rate_date": "2025-03-10",
            "rate": "1.0850",
            "source": "ECB",
            "_save": "Save",
        },
    )

    # then
    assert response.status_code == 302
    rate = FxRate.objects.get()
    assert (rate.base_currency, rate.quote_currency, rate.rate, rate.source) == (
        "EUR",
        "USD",
        Decimal("1.0850000000"),
        "ECB",
    )
    history = client.get(f"/admin/core/fxrate/{rate.pk}/history/")
    assert history.status_code == 200
    assert rate.history.count() == 1
    # and the list quotes it to six places, as treasury does
    listing = client.get("/admin/core/fxrate/").content.decode()
    assert "1 EUR = 1.085000 USD" in listing
    assert "1.0850000000" not in listing


def test_fx_rate_refused_by_the_service_is_a_form_error(
    client_for: Callable[[str], APIClient],
) -> None:
    # given
    client = client_for(Role.CONTROLLER)

    # when
    response = client.post(
        "/admin/core/fxrate/add/",
        {
            "base_currency": "XYZ",
            "quote_currency": "USD",
            "rate_date": "2025-03-10",
            "rate": "1.5",
            "source": "manual",
            "_save": "Save",
        },
    )

    # then
    assert response.status_code == 200
    assert "Unknown ISO 4217 currency &#x27;XYZ&#x27;." in response.content.decode()
    assert 'value="XYZ"' in response.content.decode()
    assert FxRate.objects.count() == 0


def test_fx_rate_recorded_is_never_changed_in_the_admin(
    client_for: Callable[[str], APIClient],
) -> None:
    # given a rate recorded by a controller
    client = client_for(Role.CONTROLLER)
    client.post(
        "/admin/core/fxrate/add/",
        {
            "base_currency": "EUR",
            "quote_currency": "USD",
            "rate_date": "2025-03-10",
            "rate": "1.0850",
            "source": "manual",
        },
    )
    rate = FxRate.objects.get()

    # when the controller tries to change it (postings may have been converted with it)
    response = client.post(
        f"/admin/core/fxrate/{rate.pk}/change/",
        {"base_currency": "GBP", "rate_date": "2020-01-01", "rate": "1.0900", "source": "ECB"},
    )

    # then refused, the rate as recorded; the page shows it read-only
    assert response.status_code == 403
    assert list(FxRate.objects.values_list("base_currency", "rate_date", "rate", "source")) == [
        ("EUR", date(2025, 3, 10), Decimal("1.0850000000"), "manual")
    ]
    assert rate.history.count() == 1
    page = client.get(f"/admin/core/fxrate/{rate.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()


def test_account_change_is_limited_and_listed_in_its_history(finance_admin: User) -> None:
    # given
    account = Account.objects.get(code="6000")
    client = verified_client(finance_admin)
    url = f"/admin/ledger/account/{account.pk}/change/"

    # when
    response = client.post(
        url,
        {
            "code": "9999",
            "type": "income",
            "role": "",
            "currency": "EUR",
            "name": "Office and admin expenses",
            "description": "Rent, utilities, supplies",
            "is_active": "on",
            "_save": "Save",
        },
    )
    history = client.get(f"/admin/ledger/account/{account.pk}/history/")

    # then
    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.code, account.type, account.role, account.currency) == (
        "6000",
        "expense",
        "expenses",
        "",
    )
    assert (account.name, account.description) == (
        "Office and admin expenses",
        "Rent, utilities, supplies",
    )
    assert history.status_code == 200
    html = history.content.decode()
    assert "Office and admin expenses" in html
    assert finance_admin.username in html
    latest = account.history.first()
    assert latest is not None
    assert (latest.name, latest.history_user) == ("Office and admin expenses", finance_admin)


def test_account_history_cannot_be_reverted_and_accounts_cannot_be_deleted(
    finance_admin: User,
) -> None:
    # given
    account = Account.objects.get(code="6000")
    client = verified_client(finance_admin)
    client.post(
        f"/admin/ledger/account/{account.pk}/change/",
        {"name": "Renamed", "description": "", "is_active": "on"},
    )
    first_version = account.history.order_by("history_id").first()
    assert first_version is not None
    revert_url = f"/admin/ledger/account/{account.pk}/history/{first_version.history_id}/"

    # when
    view = client.get(revert_url)
    revert = client.post(revert_url, {"name": "Operating expenses", "is_active": "on"})
    delete = client.get(f"/admin/ledger/account/{account.pk}/delete/")

    # then
    assert view.status_code == 200
    assert revert.status_code == 403
    assert delete.status_code == 403
    account.refresh_from_db()
    assert account.name == "Renamed"


def test_auditor_cannot_change_an_account(client_for: Callable[[str], APIClient]) -> None:
    # given
    account = Account.objects.get(code="6000")
    client = client_for(Role.AUDITOR)

    # when
    response = client.post(
        f"/admin/ledger/account/{account.pk}/change/",
        {"name": "Hacked", "description": "", "is_active": "on"},
    )

    # then
    assert response.status_code == 403
    account.refresh_from_db()
    assert account.name == "Operating expenses"


def test_finance_admin_adds_an_account(finance_admin: User) -> None:
    # given
    client = verified_client(finance_admin)

    # when
    response = client.post(
        "/admin/ledger/account/add/",
        {
            "code": "1020",
            "name": "EUR bank account",
            "type": "asset",
            "role": "",
            "currency": "EUR",
            "description": "",
            "is_active": "on",
        },
    )

    # then
    assert response.status_code == 302
    account = Account.objects.get(code="1020")
    assert (account.name, account.type, account.role, account.currency) == (
        "EUR bank account",
        "asset",
        None,
        "EUR",
    )
    assert account.history.get().history_user == finance_admin
