"""``manage.py rotate_encryption_keys`` (issue 15 hole 7): after a new key is put first, every
encrypted field of every model (bank accounts, vendor tax ids and bank details, saved bank
methods, feed tokens, webhook secrets) and every history row is re-encrypted, so the old key
can be retired; ``--check`` says when it can."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from billing.services.customers import customer_create
from billing.services.payment_methods import payment_method_add
from core.encryption import encrypted_fields, fields_needing_old_keys
from core.events.services import endpoint_create
from payables.models import Vendor
from payables.services.vendors import BankDetails, vendor_create
from reconciliation.models import BankAccount
from reconciliation.services import bank_account_create

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("rotate_encryption_keys", *args, stdout=out)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


def test_every_encrypted_field_and_history_row_moves_to_the_new_key(finance_admin, settings):
    old_key = settings.FIELD_ENCRYPTION_KEY.split(",")[0]
    customer = customer_create(
        actor=finance_admin, name="Acme", email="a@acme.example", currency="USD"
    )
    payment_method_add(
        actor=finance_admin,
        customer_id=customer.pk,
        type="ach",
        bank_account_holder="Acme",
        bank_routing_number="110000000",
        bank_account_number="000123456789",
    )
    vendor_create(
        actor=finance_admin,
        name="Supplier",
        email="s@supplier.example",
        currency="USD",
        tax_id_type="us_ein",
        tax_id="12-3456789",
        bank=BankDetails(account_holder="Supplier", routing_number="110000000",
                         account_number="987654321", iban="DE89370400440532013000"),
    )  # fmt: skip
    bank_account_create(
        actor=finance_admin, name="Operating", currency="USD", account_number="55550000111"
    )
    endpoint_create(actor=finance_admin, url="https://hooks.example/in")
    # every model with an encrypted field is covered, history models too
    labels = {m._meta.label for m, _ in encrypted_fields()}
    assert {"billing.PaymentMethod", "billing.HistoricalPaymentMethod", "payables.Vendor"} <= labels
    # when a new key is put first: the check says the old one is still needed
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = f"{new_key},{old_key}"
    code, said = run("--check")
    assert code == 1
    assert "still need an old key" in said
    # and after the rotation nothing needs it
    code, said = run()
    assert code == 0, said
    assert "billing.HistoricalPaymentMethod.bank_account_number: 1 re-encrypted" in said
    assert sum(fields_needing_old_keys().values()) == 0
    # the new key alone reads everything, unchanged
    settings.FIELD_ENCRYPTION_KEY = new_key
    vendor = Vendor.objects.get()
    assert (vendor.tax_id, vendor.bank_account_number) == ("123456789", "987654321")
    assert vendor.iban == "DE89370400440532013000"
    assert BankAccount.objects.get(name="Operating").account_number == "55550000111"
    assert run("--check")[0] == 0
