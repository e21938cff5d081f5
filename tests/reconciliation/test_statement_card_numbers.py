"""A card number a bank puts in a statement line (a card payment's details) is kept masked,
whatever the file's format or how the digits are written (issue 15 hole 3): the uploaded
file is not refused, the bank sent it; the line keeps the last four digits."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from core.roles import Role
from reconciliation.models import StatementLine
from tests.billing.test_card_guard_everywhere import pan_rows
from tests.core.test_card_numbers import PAN, VARIANTS
from tests.reconciliation.conftest import fixture_bytes

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("variant", ["two spaces", "dots", "non-breaking spaces", "whole"])
def test_a_statement_line_with_a_card_number_is_kept_masked(client_for, eur_account, variant):
    text = VARIANTS[variant]
    data = fixture_bytes("good.sta").replace(
        b":86:BANK FEE MARCH", f":86:CARD PAYMENT {text} FEE".encode()
    )
    response = client_for(Role.AR_CLERK).post(
        "/api/reconciliation/statements",
        {"file": SimpleUploadedFile("good.sta", data), "bank_account": eur_account.pk},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    line = StatementLine.objects.get(bank_reference="BANKREF002")
    assert line.description.startswith("CARD PAYMENT")
    assert line.description.endswith("4242 FEE")
    for stored in (line.description, line.raw):
        assert PAN not in re.sub(r"[^0-9]", "", stored)
    assert pan_rows() == []
