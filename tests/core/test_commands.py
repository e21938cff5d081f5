from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django_otp.oath import totp
from knox.models import AuthToken
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from core.accounts import totp_secret_base32
from core.ledger.models import Account, JournalEntry, JournalLine
from core.models import FxRate
from core.otp import AuthenticatorDevice, RecoveryCode, RecoveryCodeDevice
from core.roles import Role

pytestmark = pytest.mark.django_db


def run(*args: str) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().splitlines()


def token_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_create_api_token_prints_a_working_token_on_the_last_line() -> None:
    # given no user named erp

    # when
    lines = run(
        "create_api_token", "--username", "erp", "--role", "integration", "--scope", "ledger:read"
    )

    # then
    token = lines[-1]
    response = token_client(token).get("/api/ledger/accounts")
    assert response.status_code == 200
    assert len(response.json()) == Account.objects.count()
    user = User.objects.get(username="erp")
    assert list(user.groups.values_list("name", flat=True)) == ["integration"]
    assert user.is_staff is False
    assert user.has_usable_password() is False
    assert AuthToken.objects.filter(user=user).count() == 1
    assert AuthToken.objects.get(user=user).expiry is None


def test_create_api_token_twice_reuses_the_user_with_two_tokens() -> None:
    # given
    first = run(
        "create_api_token", "--username", "erp", "--role", "integration", "--scope", "ledger:read"
    )[-1]

    # when
    second = run(
        "create_api_token", "--username", "erp", "--role", "integration", "--scope", "ledger:read"
    )[-1]

    # then
    assert first != second
    assert User.objects.filter(username="erp").count() == 1
    assert AuthToken.objects.filter(user__username="erp").count() == 2
    assert token_client(first).get("/api/ledger/accounts").status_code == 200
    assert token_client(second).get("/api/ledger/accounts").status_code == 200


def test_create_api_token_for_a_staff_role_makes_a_staff_user() -> None:
    # when
    run("create_api_token", "--username", "reports", "--role", "auditor", "--scope", "ledger:read")

    # then
    user = User.objects.get(username="reports")
    assert user.is_staff is True
    assert list(user.groups.values_list("name", flat=True)) == ["auditor"]


def test_create_api_token_refuses_an_unknown_role() -> None:
    # when
    with pytest.raises(CommandError) as raised:
        run("create_api_token", "--username", "erp", "--role", "admin", "--scope", "ledger:read")

    # then
    assert str(raised.value) == (
        "Unknown role 'admin'; valid roles: finance_admin, ar_clerk, ap_clerk, approver, "
        "controller, auditor, integration."
    )
    assert User.objects.filter(username="erp").exists() is False
    assert AuthToken.objects.count() == 0


def test_create_api_token_refuses_to_turn_a_staff_user_into_an_integration(
    make_user: Callable[..., User],
) -> None:
    # given
    person = make_user(Role.CONTROLLER, username="carol")

    # when
    with pytest.raises(CommandError) as raised:
        run(
            "create_api_token",
            "--username",
            "carol",
            "--role",
            "integration",
            "--scope",
            "ledger:read",
        )

    # then
    assert str(raised.value) == "'carol' is a staff user; integrations need a user of their own."
    person.refresh_from_db()
    assert person.has_usable_password() is True
    assert list(person.groups.values_list("name", flat=True)) == ["controller"]
    assert AuthToken.objects.count() == 0


def test_mfa_enroll_replaces_devices_and_prints_url_secret_and_codes(
    make_user: Callable[..., User],
) -> None:
    # given a user with one authenticator already
    user = make_user(Role.AUDITOR, username="alice")
    old = AuthenticatorDevice.objects.get(user=user)

    # when
    lines = run("mfa_enroll", "--username", "alice")

    # then
    device = AuthenticatorDevice.objects.get(user=user)
    assert device.pk != old.pk
    assert device.confirmed is True
    recovery = RecoveryCodeDevice.objects.get(user=user, confirmed=True)
    assert RecoveryCode.objects.filter(device=recovery).count() == 10
    assert lines[0] == "Replaced 1 earlier device(s) of alice."
    assert lines[1] == f"Authenticator URL (scan as a QR code): {device.config_url}"
    assert lines[1].startswith("Authenticator URL (scan as a QR code): otpauth://totp/")
    assert lines[2] == f"Secret (base32, to type in by hand): {totp_secret_base32(device)}"
    codes = [line.strip() for line in lines[4:]]
    assert len(set(codes)) == 10
    # the printed codes are the only copy: the last one signs in
    assert recovery.verify_token(codes[-1]) is True
    assert RecoveryCode.objects.filter(device=recovery).count() == 9


def test_mfa_enroll_refuses_an_unknown_user() -> None:
    # when
    with pytest.raises(CommandError) as raised:
        run("mfa_enroll", "--username", "nobody")

    # then
    assert str(raised.value) == "No user named 'nobody'."
    assert AuthenticatorDevice.objects.count() == 0


def _value_after(lines: list[str], label: str) -> str:
    return next(line.split(label, 1)[1].strip() for line in lines if label in line)


def _counts() -> dict[str, int]:
    return {
        "entries": JournalEntry.objects.count(),
        "lines": JournalLine.objects.count(),
        "fx_rates": FxRate.objects.count(),
        "fx_history": FxRate.history.count(),
        "users": User.objects.count(),
        "totp": AuthenticatorDevice.objects.count(),
        "recovery_codes": RecoveryCode.objects.count(),
    }


@time_machine.travel(date(2025, 3, 10), tick=False)
def test_seed_demo_twice_creates_the_same_data_once_and_a_new_login() -> None:
    # given
    first = run("seed_demo", "--scale", "0")
    counts_after_first = _counts()

    # when
    second = run("seed_demo", "--scale", "0")

    # then
    # 5 ledger demo entries, 12 from the receivables demo (6 back-dated invoices, the 5 late
    # fees the collections runs charged, a part payment), 5 from the billing demo (two monthly
    # invoices of the subscription, two invoices in EUR, a payment) and 4 from payables (three
    # approved bills and an approved expense report), and 2 from reconciliation (a bank line
    # paying an invoice, a bank fee booked by a rule); the receivables demo adds an AR clerk
    # and an approver (shared with payables, which adds a clerk), the reconciliation demo a
    # controller
    assert counts_after_first == {
        "entries": 28,
        "lines": 67,
        "fx_rates": 28,
        "fx_history": 28,
        "users": 5,
        "totp": 1,
        "recovery_codes": 10,
    }
    assert _counts() == counts_after_first
    assert first[0] == "FX rates recorded: 28. Journal entries posted: 5, already there: 0."
    assert second[0] == "FX rates recorded: 0. Journal entries posted: 0, already there: 5."
    assert "Log in at   http://127.0.0.1:8000/admin/" in second
    assert _value_after(second, "Username:") == "demo-admin"
    password = _value_after(second, "Password:")
    assert password != _value_after(first, "Password:")
    admin = User.objects.get(username="demo-admin")
    assert admin.check_password(password) is True
    assert (admin.is_staff, admin.is_superuser) == (True, False)
    assert list(admin.groups.values_list("name", flat=True)) == ["finance_admin"]
    device = AuthenticatorDevice.objects.get(user=admin)
    assert _value_after(second, "or type the secret:") == totp_secret_base32(device)
    assert f"  {device.config_url}" in second


@time_machine.travel(date(2025, 3, 10), tick=False)
def test_seed_demo_posts_balanced_entries_and_converts_the_eur_sale() -> None:
    # when
    run("seed_demo", "--scale", "0")

    # then EUR/USD on 2025-03-09 is 1.0850 - 0.3% = 1.081745, so EUR 500 = USD 540.8725
    sale = JournalEntry.objects.get(idempotency_key="demo:eur-sale")
    assert sale.entry_date == date(2025, 3, 9)
    assert list(sale.lines.values_list("currency", "debit", "credit", "functional_debit")) == [
        ("EUR", Decimal("500.0000"), Decimal("0.0000"), Decimal("540.8725")),
        ("EUR", Decimal("0.0000"), Decimal("500.0000"), Decimal("0.0000")),
    ]
    assert list(sale.lines.values_list("functional_credit", flat=True)) == [
        Decimal("0.0000"),
        Decimal("540.8725"),
    ]
    taxed = JournalEntry.objects.get(idempotency_key="demo:sale")
    assert list(taxed.lines.values_list("account__code", "debit", "credit")) == [
        ("1100", Decimal("1087.5000"), Decimal("0.0000")),
        ("4000", Decimal("0.0000"), Decimal("1000.0000")),
        ("2100", Decimal("0.0000"), Decimal("87.5000")),
    ]
    demo_keys = JournalEntry.objects.filter(idempotency_key__startswith="demo:")
    assert sorted(demo_keys.values_list("idempotency_key", flat=True)) == [
        "demo:capital",
        "demo:eur-sale",
        "demo:expense",
        "demo:payment",
        "demo:sale",
    ]


def test_seed_demo_on_a_later_day_keeps_earlier_entries_and_rates() -> None:
    # given
    with time_machine.travel(date(2025, 3, 10), tick=False):
        run("seed_demo", "--scale", "0")
    rates_before = dict(FxRate.objects.values_list("pk", "rate"))

    # when
    with time_machine.travel(date(2025, 3, 11), tick=False):
        lines = run("seed_demo", "--scale", "0")

    # then one new day of 4 rates, no rate changed, no entry posted again
    assert lines[0] == "FX rates recorded: 4. Journal entries posted: 0, already there: 5."
    assert FxRate.objects.count() == 32
    assert {
        pk: rate for pk, rate in FxRate.objects.values_list("pk", "rate") if pk in rates_before
    } == (rates_before)
    assert JournalEntry.objects.count() == 28
    assert lines[1] == "Receivables demo data: already there."
    assert lines[2] == "Billing demo data: already there."


@time_machine.travel(date(2025, 3, 10), tick=False)
def test_seed_demo_login_works_with_password_and_a_recovery_code() -> None:
    # given
    lines = run("seed_demo", "--scale", "0")
    password = _value_after(lines, "Password:")
    code = lines[-2].strip()
    browser = Client()

    # when
    response = browser.post(
        "/admin/login/?next=/admin/",
        {"username": "demo-admin", "password": password, "otp_token": code, "next": "/admin/"},
    )

    # then
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    index = browser.get("/admin/")
    assert index.status_code == 200
    assert "Finance back-office" in index.content.decode()
    assert RecoveryCode.objects.filter(device__user__username="demo-admin").count() == 9


@time_machine.travel(date(2025, 3, 10), tick=False)
def test_seed_demo_login_works_with_the_printed_totp_secret() -> None:
    # given
    lines = run("seed_demo", "--scale", "0")
    password = _value_after(lines, "Password:")
    device = AuthenticatorDevice.objects.get(user__username="demo-admin")
    code = f"{totp(device.bin_key):06d}"

    # when
    response = Client().post(
        "/admin/login/",
        {"username": "demo-admin", "password": password, "otp_token": code, "next": "/admin/"},
    )

    # then
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_seed_demo_refuses_in_production(settings: Settings) -> None:
    # given
    settings.PRODUCTION = True

    # when
    with pytest.raises(CommandError) as raised:
        run("seed_demo", "--scale", "0")

    # then
    assert str(raised.value) == "Demo data is never seeded in production."
    assert JournalEntry.objects.count() == 0
    assert FxRate.objects.count() == 0
    assert User.objects.filter(username="demo-admin").exists() is False
