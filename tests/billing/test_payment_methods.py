"""Payment methods: cards only as processor tokens, bank accounts encrypted at rest and shown
masked, and no card number anywhere after one was sent (RELIABILITY.md C1, C7)."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.db import connection

from billing.exceptions import BillingError
from billing.models import PaymentMethod
from billing.processors import CardNumberRefused
from billing.services.payment_methods import (
    payment_method_add,
    payment_method_remove,
)
from core.card_numbers import contains_card_number, looks_like_card_number
from core.encryption import fields_reencrypt
from core.exceptions import PermissionDeniedError

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.billing.fakes.urls")]

PAN = "4000056655665556"  # a Stripe test Visa (debit): Luhn-valid
GUARD = "billing.api.processor_views.CardNumberGuardMiddleware"
OLD_KEY = "dGVzdC1rZXktZm9yLWRldmVsb3BtZW50LW9ubHktMDE="


@pytest.fixture
def guarded(settings) -> None:
    """The card-number guard where core's settings will put it: before idempotency."""
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(middleware.index("core.idempotency.IdempotencyMiddleware"), GUARD)
    settings.MIDDLEWARE = middleware


def url(customer_id: int) -> str:
    return f"/api/billing/customers/{customer_id}/payment-methods"


CARD = {
    "type": "credit_card",
    "processor": "stripe",
    "processor_customer_id": "cus_Acme01",
    "processor_token": "pm_1PvisaAcme",
    "card_brand": "visa",
    "card_last4": "4242",
    "card_exp_month": 12,
    "card_exp_year": 2030,
}
ACH = {
    "type": "ach",
    "bank_account_holder": "Acme Corp",
    "bank_routing_number": "110000000",
    "bank_account_number": "000123456789",
}


def pan_rows() -> list[tuple[str, str]]:
    """Every (table, column) of the database whose text holds the card number's digits."""
    hits = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND data_type IN "
            "('text', 'character varying', 'character', 'json', 'jsonb', 'bytea')"
        )
        columns = cursor.fetchall()
        for table, column, data_type in columns:
            value = (
                f"encode(\"{column}\", 'escape')" if data_type == "bytea" else f'"{column}"::text'
            )
            cursor.execute(
                f"SELECT count(*) FROM \"{table}\" WHERE regexp_replace({value}, '[^0-9]', '', 'g') "
                "LIKE %s",
                [f"%{PAN}%"],
            )
            if cursor.fetchone()[0]:
                hits.append((table, column))
    return hits


# --- the detector --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        PAN,
        "4242 4242 4242 4242",
        "4111-1111-1111-1111",
        "378282246310005",  # Amex, 15 digits
        "6011111111111117",
        "pay with 5555 5555 5555 4444 exp 12/30",
        "4242 4242 4242 4242 123",  # followed by a CVC
        '{"n": 4242424242424242}',
    ],
)
def test_C1_card_numbers_are_detected(text: str) -> None:
    assert contains_card_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "4242424242424241",  # fails Luhn
        "424242424242",  # 12 digits
        "2026-01-15",
        "amount 1234567.89",
        "INV-2026-000123",
        "",
    ],
)
def test_C1_other_numbers_are_not_card_numbers(text: str) -> None:
    assert not contains_card_number(text)


def test_a_bank_account_number_that_only_passes_luhn_is_not_a_card() -> None:
    # 1000000000000008 passes Luhn but no card network issues numbers starting with 1
    assert contains_card_number("1000000000000008")
    assert not looks_like_card_number("1000000000000008")
    assert looks_like_card_number("4111 1111 1111 1111")


# --- service ---------------------------------------------------------------------------------


def test_first_method_is_default_and_a_new_default_replaces_it(clerk, customer) -> None:
    # given
    first = payment_method_add(actor=clerk, customer_id=customer.pk, **ACH)
    # when
    second = payment_method_add(actor=clerk, customer_id=customer.pk, **CARD, is_default=True)
    # then
    first.refresh_from_db()
    assert (first.is_default, second.is_default) == (False, True)
    assert str(second) == "visa \u2022\u2022\u2022\u20224242"
    # when the default is removed
    payment_method_remove(actor=clerk, payment_method_id=second.pk)
    second.refresh_from_db()
    # then it is kept, detached, and no longer the default
    assert second.detached_at is not None
    assert second.is_default is False
    assert second.history.count() == 2


def test_a_card_is_only_accepted_as_a_processor_token(clerk, customer) -> None:
    with pytest.raises(BillingError):
        payment_method_add(actor=clerk, customer_id=customer.pk, type="credit_card")
    with pytest.raises(CardNumberRefused):
        payment_method_add(
            actor=clerk, customer_id=customer.pk, **{**ACH, "bank_account_number": PAN}
        )
    assert PaymentMethod.objects.count() == 0


def test_a_role_without_the_right_cannot_add(make_user, customer) -> None:
    with pytest.raises(PermissionDeniedError):
        payment_method_add(actor=make_user("auditor"), customer_id=customer.pk, **ACH)
    assert PaymentMethod.objects.count() == 0


# --- encryption at rest ----------------------------------------------------------------------


def raw_account_numbers() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT bank_account_number FROM billing_paymentmethod "
            "UNION ALL SELECT bank_account_number FROM billing_historicalpaymentmethod"
        )
        return [row[0] for row in cursor.fetchall()]


def test_C7_bank_account_number_is_encrypted_at_rest_and_shown_masked(
    clerk, customer, client_for
) -> None:
    # when
    response = client_for("ar_clerk").post(url(customer.pk), ACH, format="json")
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["bank_account_masked"] == "\u2022\u2022\u2022\u20226789"
    assert "000123456789" not in response.content.decode()
    raw = raw_account_numbers()
    assert len(raw) == 2  # the row and its history row
    assert all(r.startswith("fernet:") and "123456789" not in r for r in raw)
    method = PaymentMethod.objects.get()
    assert method.bank_account_number == "000123456789"


def test_C7_after_key_rotation_no_row_needs_the_old_key(clerk, customer, settings) -> None:
    # given a number stored under the old key
    payment_method_add(actor=clerk, customer_id=customer.pk, **ACH)
    new_key = Fernet.generate_key().decode()
    # when the new key is put first and the rows re-encrypted
    settings.FIELD_ENCRYPTION_KEY = f"{new_key},{OLD_KEY}"
    counts = fields_reencrypt()
    assert counts["billing.PaymentMethod.bank_account_number"] == 1
    assert counts["billing.HistoricalPaymentMethod.bank_account_number"] == 1
    # then the new key alone reads every row, and the old one none
    settings.FIELD_ENCRYPTION_KEY = new_key
    assert PaymentMethod.objects.get().bank_account_number == "000123456789"
    for token in raw_account_numbers():
        data = token.removeprefix("fernet:").encode()
        assert Fernet(new_key).decrypt(data) == b"000123456789"
        with pytest.raises(InvalidToken):
            Fernet(OLD_KEY).decrypt(data)


# --- API -------------------------------------------------------------------------------------


def test_add_and_list_through_the_api(client_for, customer) -> None:
    clerk = client_for("ar_clerk")
    # when
    created = clerk.post(url(customer.pk), CARD, format="json")
    # then
    assert created.status_code == 201, created.json()
    assert {
        k: created.json()[k] for k in ("type", "processor_token", "card_last4", "is_default")
    } == {
        "type": "credit_card",
        "processor_token": "pm_1PvisaAcme",
        "card_last4": "4242",
        "is_default": True,
    }
    listed = client_for("auditor").get(url(customer.pk))
    assert listed.status_code == 200
    assert [m["id"] for m in listed.json()["results"]] == [created.json()["id"]]
    # when removed
    removed = clerk.delete(f"{url(customer.pk)}/{created.json()['id']}")
    assert removed.status_code == 200
    assert clerk.get(url(customer.pk)).json()["results"] == []


@pytest.mark.parametrize(
    ("role", "get", "post"),
    [
        ("finance_admin", 200, 201),
        ("ar_clerk", 200, 201),
        ("controller", 200, 403),
        ("auditor", 200, 403),
        ("ap_clerk", 403, 403),
        ("approver", 403, 403),
    ],
)
def test_authorisation_matrix(client_for, customer, role, get, post) -> None:
    client = client_for(role)
    assert client.get(url(customer.pk)).status_code == get
    assert client.post(url(customer.pk), ACH, format="json").status_code == post


def test_anonymous_is_refused(customer) -> None:
    from rest_framework.test import APIClient

    assert APIClient().get(url(customer.pk)).status_code in (401, 403)


def test_integration_token_can_add(integration_client, customer) -> None:
    response = integration_client.post(url(customer.pk), CARD, format="json")
    assert response.status_code == 201, response.json()


def test_the_input_serializer_refuses_a_card_number_in_any_field(client_for, customer) -> None:
    # given no middleware: the serializer's own guard
    response = client_for("ar_clerk").post(
        url(customer.pk), {**ACH, "bank_account_holder": f"Acme {PAN}"}, format="json"
    )
    assert response.status_code == 400
    assert PAN not in response.content.decode()
    assert PaymentMethod.objects.count() == 0
    assert pan_rows() == []


def test_a_luhn_valid_bank_account_number_without_a_card_prefix_is_accepted(
    guarded, client_for, customer
) -> None:
    response = client_for("ar_clerk").post(
        url(customer.pk), {**ACH, "bank_account_number": "1000000000000008"}, format="json"
    )
    assert response.status_code == 201, response.json()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "payment-methods", {**ACH, "bank_account_number": PAN}),
        (
            "post",
            "payment-methods",
            {**CARD, "card_number": f"{PAN[:4]} {PAN[4:8]} {PAN[8:12]} {PAN[12:]}"},
        ),
        (
            "post",
            "/api/billing/customers",
            {"name": f"Card {PAN}", "email": "a@b.example", "currency": "USD"},
        ),
        ("post", "/api/billing/invoices", {"customer": 1, "lines": [], "memo": PAN}),
        (
            "put",
            "/api/billing/invoices/1",
            {"memo": f"card {PAN[:4]}-{PAN[4:8]}-{PAN[8:12]}-{PAN[12:]}"},
        ),
        ("get", f"/api/billing/invoices?q={PAN}", None),
    ],
)
def test_C1_a_card_number_sent_anywhere_is_refused_stored_nowhere_and_not_logged(
    guarded, client_for, customer, caplog, method, path, body
) -> None:
    # given
    client = client_for("finance_admin")
    caplog.set_level(logging.DEBUG)
    target = url(customer.pk) if path == "payment-methods" else path
    # when
    if body is None:
        response = getattr(client, method)(target)
    else:
        response = getattr(client, method)(
            target, body, format="json", HTTP_IDEMPOTENCY_KEY="pan-test-1"
        )
    # then a clear 400, and the digits nowhere: response, database, logs
    assert response.status_code == 400
    assert response.json()["code"] == "card_number_refused"
    assert "token" in response.json()["message"]
    assert PAN not in response.content.decode()
    assert pan_rows() == []
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert PAN not in logged.replace(" ", "").replace("-", "")
    assert any("card number" in r.getMessage() for r in caplog.records)


def test_C1_a_card_number_in_a_form_body_is_refused(guarded, client_for, customer) -> None:
    response = client_for("finance_admin").post(
        "/api/billing/customers", {"name": PAN, "email": "a@b.example", "currency": "USD"}
    )
    assert response.status_code == 400
    assert pan_rows() == []


def test_the_database_scan_finds_the_digits_when_they_are_there(clerk) -> None:
    # given a number written around the guards (to prove the scan above can fail)
    from billing.services.customers import customer_create

    customer_create(actor=clerk, name=f"x {PAN[:8]}-{PAN[8:]}", email="a@b.example", currency="USD")
    # then
    assert ("billing_customer", "name") in pan_rows()


def test_the_guard_lets_clean_form_and_json_bodies_through(guarded, client_for) -> None:
    client = client_for("finance_admin")
    form = client.post(
        "/api/billing/customers", {"name": "Form Co", "email": "f@x.example", "currency": "USD"}
    )
    as_json = client.post(
        "/api/billing/customers",
        {"name": "Json Co", "email": "j@x.example", "currency": "USD", "tax_id": "12-3456789"},
        format="json",
    )
    assert (form.status_code, as_json.status_code) == (201, 201), (form.json(), as_json.json())


@pytest.mark.django_db
def test_hosted_checkout_placeholders_are_not_listed(customer) -> None:
    from billing.models import PaymentMethod
    from billing.selectors import payment_method_list

    # given the placeholder a PayPal checkout hangs its attempts on
    PaymentMethod.objects.create(
        customer=customer,
        type="credit_card",
        processor="paypal",
        processor_token=f"hosted_checkout_{customer.pk}",
    )
    # then the customer's usable methods do not include it
    assert list(payment_method_list(customer_id=customer.pk)) == []
