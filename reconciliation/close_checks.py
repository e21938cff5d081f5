"""Reconciliation's items of a month-end close (``core.ledger.close``): every active bank
account is reconciled and signed off through the month's last day."""

from __future__ import annotations

from datetime import date

from core.ledger.close import CloseCheck, register_close_check
from reconciliation.enums import SignOffStatus
from reconciliation.models import BankAccount, SignOff


def _bank_accounts_signed_off(first: date, last: date) -> tuple[bool, str, str]:
    accounts = BankAccount.objects.filter(is_active=True).order_by("name", "pk")
    signed = set(
        SignOff.objects.filter(status=SignOffStatus.SIGNED, period_end__gte=last).values_list(
            "bank_account_id", flat=True
        )
    )
    missing = [account.name for account in accounts if account.pk not in signed]
    if not missing:
        return True, "", ""
    return (
        False,
        f"Not signed off through {last:%Y-%m-%d}: "
        + ", ".join(missing[:5])
        + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        + ".",
        "/admin/reconciliation/signoff/",
    )


def register() -> None:
    register_close_check(
        CloseCheck(
            "reconciliation.bank_accounts_signed_off",
            "Every bank account reconciled and signed off",
            _bank_accounts_signed_off,
        )
    )
