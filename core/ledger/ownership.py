"""What the ledger may not change by hand: entries a document posted, accounts a sub-ledger owns.

An entry whose ``source`` names a document ("billing.invoice:42") is undone only through that
document's own operation (an invoice void), which also puts the document right; reversing it
in the ledger alone would leave the document and its sub-ledger disagreeing with the books.
Likewise a control account (AR, AP, customer credits, processor clearing, a bank account under
reconciliation) equals its sub-ledger, so manual lines on it are refused unless the system
settings' ``ledger.manual_posting_roles`` lists its role.

``core`` does not import the domains: the document routes are a table here that a domain may
extend with ``register_document_route``, and the domains say which accounts they hold with
``register_control_accounts`` (reconciliation: the ledger accounts of its bank accounts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.system_settings import system_settings

# Sources a person writes: anything else names the document or job that posted the entry.
MANUAL_SOURCES = frozenset({"", "manual"})


@dataclass(frozen=True, slots=True)
class DocumentRoute:
    # "invoice {id}": what the document is called in a message.
    label: str
    # "void it through POST /api/billing/invoices/{id}/void": how its entries are undone.
    route: str


_DOCUMENT_ROUTES: dict[str, DocumentRoute] = {
    "billing.invoice": DocumentRoute(
        "invoice {id}", "void it through POST /api/billing/invoices/{id}/void"
    ),
    "billing.credit_note": DocumentRoute(
        "credit note {id}",
        "a credit note is final: charge the amount again with a new invoice through "
        "POST /api/billing/invoices",
    ),
    "billing.payment": DocumentRoute(
        "payment {id}",
        "refund it through POST /api/billing/refunds, or undo the bank match that recorded it "
        "through POST /api/reconciliation/matches/<match id>/undo",
    ),
    "billing.refund": DocumentRoute(
        "refund {id}",
        "a refund is final: record money the customer returns as a payment through "
        "POST /api/billing/payments",
    ),
    "receivables.dispute": DocumentRoute(
        "dispute {id}", "it follows the dispute: see GET /api/accounts/disputes"
    ),
    "payables.bill": DocumentRoute(
        "bill {id}", "void it through POST /api/payables/bills/{id}/void"
    ),
    "payables.payment_run": DocumentRoute(
        "payment run {id}",
        "it follows the payment run: see GET /api/payables/payment-runs/{id}",
    ),
    "payables.expense_report": DocumentRoute(
        "expense report {id}",
        "it follows the expense report: see GET /api/payables/expense-reports/{id}",
    ),
    "reconciliation.match": DocumentRoute(
        "bank match {id}", "undo it through POST /api/reconciliation/matches/{id}/undo"
    ),
    "reconciliation.payout": DocumentRoute(
        "payout {id}",
        "undo the bank match that settled it through "
        "POST /api/reconciliation/matches/<match id>/undo",
    ),
}


@dataclass(frozen=True, slots=True)
class Document:
    """The document an entry belongs to, as a message shows it."""

    source: str
    label: str
    route: str

    def describe(self, entry_id: int) -> str:
        return f"JE-{entry_id} belongs to {self.label}: {self.route}."


def register_document_route(prefix: str, *, label: str, route: str) -> None:
    """Say how the entries of a kind of document are undone. ``label`` and ``route`` may use
    ``{id}``, the document's id from the entry's source ``"<prefix>:<id>"``."""
    _DOCUMENT_ROUTES[prefix] = DocumentRoute(label, route)


def is_document_source(source: str) -> bool:
    return source.strip() not in MANUAL_SOURCES


def document_of(source: str) -> Document | None:
    """The document that owns entries of ``source``; None for a manual entry.

    A source without a known route still owns its entry: it is refused with a generic route.
    """
    if not is_document_source(source):
        return None
    prefix, _, doc_id = source.partition(":")
    known = _DOCUMENT_ROUTES.get(prefix)
    if known is None or not doc_id:
        return Document(
            source=source,
            label=f"{source!r}",
            route="it is undone only through the operation that posted it",
        )
    return Document(
        source=source,
        label=known.label.format(id=doc_id),
        route=known.route.format(id=doc_id),
    )


ControlAccountsProvider = Callable[[], Iterable[int]]


@dataclass(frozen=True, slots=True)
class _ControlAccounts:
    provider: ControlAccountsProvider
    # The role the accounts count as, whatever role (or none) they have in the chart.
    role: str
    # What they are, for the refusal: "the ledger account of a bank account under
    # reconciliation".
    what: str


_CONTROL_ACCOUNT_PROVIDERS: dict[str, _ControlAccounts] = {}


def register_control_accounts(
    name: str, provider: ControlAccountsProvider, *, role: str, what: str
) -> None:
    """Declare accounts a domain's sub-ledger holds whatever their role in the chart:
    ``provider`` returns their ids; manual lines on them are refused unless ``role`` is in
    ``ledger.manual_posting_roles``."""
    _CONTROL_ACCOUNT_PROVIDERS[name] = _ControlAccounts(provider, role, what)


def manual_posting_roles() -> frozenset[str]:
    return frozenset(system_settings().ledger.manual_posting_roles)


@dataclass(frozen=True, slots=True)
class ControlRole:
    role: str
    # Empty for a role the account has in the chart; else what a domain declared it to be.
    what: str = ""


def control_roles(accounts: Iterable[tuple[int, str | None]]) -> dict[int, list[ControlRole]]:
    """For each (account id, chart role): the roles it counts as, its own first, then those
    a domain declared (an account without a role under reconciliation counts as cash)."""
    wanted = dict(accounts)
    result = {pk: [ControlRole(role)] if role else [] for pk, role in wanted.items()}
    for _name, declared in sorted(_CONTROL_ACCOUNT_PROVIDERS.items()):
        for account_id in set(declared.provider()) & wanted.keys():
            result[account_id].append(ControlRole(declared.role, declared.what))
    return result
