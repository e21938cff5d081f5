from __future__ import annotations

import pytest

from core.ledger.models import Account


@pytest.fixture
def accounts(db: None) -> dict[str, Account]:
    """The seeded chart of accounts by role."""
    return {a.role: a for a in Account.objects.exclude(role=None)}
