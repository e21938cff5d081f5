"""The matching engine: pure functions over plain data (no ORM), so it is fast and testable.

``match_lines`` takes bank lines and the open items they may explain and returns proposals,
each with a confidence (0..1) and a reason a person can read. Rules run in priority order and
a line takes the first proposal it gets:

a. a reference in the remittance text or end-to-end id: invoice number, payment reference,
   payment-run item end-to-end id or run number;
b. amount + date window + counterparty (name equal after normalisation, or a learned alias);
c. fuzzy counterparty name (rapidfuzz) + exact amount;
d. one line paying several invoices of one customer (bounded subset sum), and a line paying
   part of a customer's only open invoice;
e. user rules (text contains / counterparty equals, amount range, sign) -> a ledger account.

Card-processor payouts (payout grouping): a deposit is one payout (a Stripe payout, a PayPal or
Coinbase Commerce settlement) that settles many payments; the payout id (``po_...``, the PayPal
withdrawal's transaction id) in the text matches it in pass a, and in pass b the exact amount
within the date window of its arrival, with the processor named in the line.

Every lookup goes through a dict built once, so the work is about linear in lines + items.
Credits (money in) match invoices and unreconciled payments; debits match payment runs (the
run total as one batch debit, or one item) and rules.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache

from rapidfuzz import fuzz, process

ZERO = Decimal(0)

# Confidences. Automatic application happens at RECONCILIATION_AUTO_MATCH_THRESHOLD (0.95).
C_REFERENCE_EXACT = Decimal("0.99")
C_REFERENCE_PARTIAL = Decimal("0.97")
C_REFERENCE_OTHER_AMOUNT = Decimal("0.80")
C_COUNTERPARTY = Decimal("0.96")
C_LEARNED = Decimal("0.97")
C_COUNTERPARTY_AMBIGUOUS = Decimal("0.75")
C_COUNTERPARTY_OUT_OF_WINDOW = Decimal("0.85")
C_FUZZY_MAX = Decimal("0.94")
C_FUZZY_MIN = Decimal("0.70")
C_SUBSET = Decimal("0.90")
C_PARTIAL = Decimal("0.60")
C_RUN_TOTAL = Decimal("0.90")
C_RULE = Decimal("0.99")
C_PAYOUT_REFERENCE = Decimal("0.99")
# Exact amount, arrival within the window, processor named: applied automatically only when
# no other payout fits.
C_PAYOUT_AMOUNT = Decimal("0.96")
C_PAYOUT_AMBIGUOUS = Decimal("0.75")
# How a processor shows in the bank line (counterparty or text), by provider.
PROCESSOR_NAMES = {
    "stripe": ("STRIPE",),
    "paypal": ("PAYPAL",),
    "coinbase_commerce": ("COINBASE",),
}
# How a proposal names the payout, by provider.
PAYOUT_TITLES = {
    "stripe": "Stripe payout",
    "paypal": "PayPal settlement",
    "coinbase_commerce": "Coinbase Commerce settlement",
}

FUZZY_CUTOFF = 85.0
SUBSET_MAX_ITEMS = 16
SUBSET_MAX_STEPS = 20_000
FUZZY_MAX_CANDIDATES = 500

_LEGAL_FORMS = frozenset(
    [
        "INC",
        "LLC",
        "LTD",
        "GMBH",
        "AG",
        "SA",
        "SAS",
        "SARL",
        "BV",
        "NV",
        "PLC",
        "CO",
        "CORP",
        "CORPORATION",
        "COMPANY",
        "LIMITED",
        "KG",
        "OHG",
        "SRL",
        "SPA",
        "AB",
        "AS",
        "OY",
        "THE",
    ]
)
_NON_ALNUM = re.compile(r"[^A-Z0-9]+")
_TOKEN_SPLIT = re.compile(r"[\s,;:()\[\]{}'\"<>|+]+")


@lru_cache(maxsize=1 << 16)
def normalize_name(name: str) -> str:
    """Upper case, accents and punctuation removed, legal forms dropped: "Acme, Inc." ->
    "ACME"."""
    if not name:
        return ""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().upper()
    # "S.A." and "S.A" are the legal form SA, not the words S and A.
    text = text.replace(".", "")
    words = [w for w in _NON_ALNUM.split(text) if w and w not in _LEGAL_FORMS]
    return " ".join(words)


def normalize_account(account: str) -> str:
    return _NON_ALNUM.sub("", (account or "").upper())


def normalize_reference(reference: str) -> str:
    """References compare on letters and digits only: "INV-2026-000001" == "inv2026000001"."""
    return _NON_ALNUM.sub("", (reference or "").upper())


def reference_tokens(*texts: str) -> set[str]:
    """Candidate references in remittance texts: words split on spaces and separators,
    each normalised; short ones (under 4 characters) cannot be references."""
    out: set[str] = set()
    for text in texts:
        if not text:
            continue
        for word in _TOKEN_SPLIT.split(text.upper()):
            token = _NON_ALNUM.sub("", word)
            if len(token) >= 4:
                out.add(token)
            # "INV-1/INV-2" or "REF:INV-1" glued by other separators.
            if "/" in word:
                for part in word.split("/"):
                    part_token = _NON_ALNUM.sub("", part)
                    if len(part_token) >= 4:
                        out.add(part_token)
    return out


@dataclass(frozen=True, slots=True)
class BankLine:
    id: int
    amount: Decimal  # signed: money in positive
    currency: str
    booking_date: date
    description: str = ""
    counterparty_name: str = ""
    counterparty_account: str = ""
    bank_reference: str = ""
    end_to_end_id: str = ""


@dataclass(frozen=True, slots=True)
class OpenInvoice:
    id: int
    number: str
    customer_id: int
    customer_name: str
    currency: str
    amount_due: Decimal
    due_date: date


@dataclass(frozen=True, slots=True)
class OpenPayment:
    """A recorded customer payment no bank line explains yet."""

    id: int
    reference: str
    customer_id: int
    customer_name: str
    currency: str
    amount: Decimal
    received_date: date


@dataclass(frozen=True, slots=True)
class RunItem:
    id: int
    end_to_end_id: str
    amount: Decimal
    vendor_id: int
    vendor_name: str


@dataclass(frozen=True, slots=True)
class OpenRun:
    id: int
    number: str
    currency: str
    total: Decimal
    payment_date: date
    items: tuple[RunItem, ...] = ()


@dataclass(frozen=True, slots=True)
class OpenPayout:
    """A card-processor payout waiting for its bank deposit: one line of ``amount``."""

    id: int
    external_id: str
    currency: str
    amount: Decimal  # signed like a bank line: a deposit positive
    arrival_date: date
    provider: str = "stripe"


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    priority: int
    account_id: int
    name: str = ""
    text_contains: str = ""
    counterparty_name_equals: str = ""
    counterparty_account_equals: str = ""
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    sign: str = "any"


@dataclass(frozen=True, slots=True)
class Alias:
    kind: str  # "name" | "account"
    key: str  # normalised
    customer_id: int | None
    vendor_id: int | None
    taught_by: str
    taught_on: date


@dataclass(frozen=True, slots=True)
class Target:
    kind: str  # invoice | payment | payment_run | payment_run_item | account | payout
    id: int
    amount: Decimal  # positive


@dataclass(frozen=True, slots=True)
class Proposal:
    line_ids: tuple[int, ...]
    targets: tuple[Target, ...]
    confidence: Decimal
    rule: str
    reason: str
    amount: Decimal  # signed like the lines
    currency: str
    customer_id: int | None = None
    vendor_id: int | None = None
    rule_id: int | None = None


@dataclass(frozen=True, slots=True)
class Config:
    date_window_days: int = 5
    fuzzy_cutoff: float = FUZZY_CUTOFF


@dataclass(slots=True)
class _State:
    """Open amounts left as proposals consume them, so no item is promised twice."""

    invoice_due: dict[int, Decimal] = field(default_factory=dict)
    used_payments: set[int] = field(default_factory=set)
    used_runs: set[int] = field(default_factory=set)
    used_items: set[int] = field(default_factory=set)
    used_payouts: set[int] = field(default_factory=set)


def _fmt(amount: Decimal, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


class _Index:
    """Dicts over the open items, built once per call."""

    def __init__(
        self,
        invoices: Sequence[OpenInvoice],
        payments: Sequence[OpenPayment],
        runs: Sequence[OpenRun],
        aliases: Sequence[Alias],
    ) -> None:
        self.invoices = {i.id: i for i in invoices}
        self.invoice_by_ref: dict[str, int] = {}
        self.invoices_by_customer: dict[int, list[int]] = defaultdict(list)
        self.invoices_by_amount: dict[tuple[str, Decimal], list[int]] = defaultdict(list)
        for inv in invoices:
            if inv.number:
                self.invoice_by_ref[normalize_reference(inv.number)] = inv.id
            self.invoices_by_customer[inv.customer_id].append(inv.id)
            self.invoices_by_amount[(inv.currency, inv.amount_due)].append(inv.id)
        self.payments = {p.id: p for p in payments}
        self.payment_by_ref: dict[str, int] = {}
        self.payments_by_customer_amount: dict[tuple[int, str, Decimal], list[int]] = defaultdict(
            list
        )
        self.payments_by_amount: dict[tuple[str, Decimal], list[int]] = defaultdict(list)
        for p in payments:
            ref = normalize_reference(p.reference)
            if len(ref) >= 4:
                self.payment_by_ref[ref] = p.id
            self.payments_by_customer_amount[(p.customer_id, p.currency, p.amount)].append(p.id)
            self.payments_by_amount[(p.currency, p.amount)].append(p.id)
        self.runs = {r.id: r for r in runs}
        self.run_by_number: dict[str, int] = {}
        self.runs_by_total: dict[tuple[str, Decimal], list[int]] = defaultdict(list)
        self.items: dict[int, tuple[RunItem, OpenRun]] = {}
        self.item_by_e2e: dict[str, int] = {}
        self.items_by_vendor_amount: dict[tuple[str, str, Decimal], list[int]] = defaultdict(list)
        for run in runs:
            self.run_by_number[normalize_reference(run.number)] = run.id
            self.runs_by_total[(run.currency, run.total)].append(run.id)
            for item in run.items:
                self.items[item.id] = (item, run)
                if item.end_to_end_id:
                    self.item_by_e2e[normalize_reference(item.end_to_end_id)] = item.id
                key = (normalize_name(item.vendor_name), run.currency, item.amount)
                self.items_by_vendor_amount[key].append(item.id)
        # Customers by normalised name (one name may belong to several customers).
        self.customers_by_name: dict[str, set[int]] = defaultdict(set)
        self.customer_names: dict[int, str] = {}
        for inv in invoices:
            self.customers_by_name[normalize_name(inv.customer_name)].add(inv.customer_id)
            self.customer_names[inv.customer_id] = normalize_name(inv.customer_name)
        for p in payments:
            self.customers_by_name[normalize_name(p.customer_name)].add(p.customer_id)
            self.customer_names[p.customer_id] = normalize_name(p.customer_name)
        self.aliases: dict[tuple[str, str], Alias] = {(a.kind, a.key): a for a in aliases}


def _alias_for(line: BankLine, index: _Index) -> Alias | None:
    account = normalize_account(line.counterparty_account)
    if account:
        alias = index.aliases.get(("account", account))
        if alias is not None:
            return alias
    name = normalize_name(line.counterparty_name)
    if name:
        return index.aliases.get(("name", name))
    return None


def _learned(alias: Alias) -> str:
    return f"learned from {alias.taught_by}'s match of {alias.taught_on.isoformat()}"


def _within(a: date, b: date, days: int) -> bool:
    return abs((a - b).days) <= days


# --- rule a: references -----------------------------------------------------------------


def _by_reference(line: BankLine, index: _Index, state: _State) -> Proposal | None:
    tokens = reference_tokens(line.description, line.bank_reference, line.end_to_end_id)
    if not tokens:
        return None
    amount = line.amount
    if amount > 0:
        invoice_ids = sorted({index.invoice_by_ref[t] for t in tokens if t in index.invoice_by_ref})
        invoices = [
            index.invoices[i]
            for i in invoice_ids
            if index.invoices[i].currency == line.currency and state.invoice_due[i] > 0
        ]
        if invoices:
            return _reference_invoices(line, invoices, state)
        for t in tokens:
            pid = index.payment_by_ref.get(t)
            if pid is None or pid in state.used_payments:
                continue
            p = index.payments[pid]
            if p.currency == line.currency and p.amount == amount:
                state.used_payments.add(pid)
                return Proposal(
                    (line.id,),
                    (Target("payment", pid, amount),),
                    C_REFERENCE_EXACT,
                    "reference",
                    f"payment reference {p.reference} in the remittance text, same amount",
                    amount,
                    line.currency,
                    customer_id=p.customer_id,
                )
        return None
    out = -amount
    for t in tokens:
        item_id = index.item_by_e2e.get(t)
        if item_id is not None and item_id not in state.used_items:
            item, run = index.items[item_id]
            if (
                run.currency == line.currency
                and item.amount == out
                and run.id not in state.used_runs
            ):
                state.used_items.add(item_id)
                return Proposal(
                    (line.id,),
                    (Target("payment_run_item", item_id, out),),
                    C_REFERENCE_EXACT,
                    "reference",
                    f"end-to-end id {item.end_to_end_id} of payment run {run.number}, same amount",
                    amount,
                    line.currency,
                    vendor_id=item.vendor_id,
                )
        run_id = index.run_by_number.get(t)
        if run_id is not None and run_id not in state.used_runs:
            run = index.runs[run_id]
            if run.currency == line.currency and run.total == out:
                if any(i.id in state.used_items for i in run.items):
                    continue
                state.used_runs.add(run_id)
                return Proposal(
                    (line.id,),
                    (Target("payment_run", run_id, out),),
                    C_REFERENCE_EXACT,
                    "reference",
                    f"payment run {run.number} in the text, debit equals the run total",
                    amount,
                    line.currency,
                )
    return None


def _reference_invoices(line: BankLine, invoices: list[OpenInvoice], state: _State) -> Proposal:
    amount = line.amount
    due = sum((state.invoice_due[i.id] for i in invoices), ZERO)
    numbers = ", ".join(i.number for i in invoices)
    customers = {i.customer_id for i in invoices}
    if len(customers) > 1:
        # References to several customers' invoices: a person decides.
        confidence, how = C_REFERENCE_OTHER_AMOUNT, "invoices of several customers"
    elif amount == due:
        confidence, how = C_REFERENCE_EXACT, "amount equals what is due"
    elif amount < due and len(invoices) == 1:
        confidence, how = (
            C_REFERENCE_PARTIAL,
            (f"partial payment of {_fmt(due, line.currency)} due"),
        )
    else:
        confidence, how = (
            C_REFERENCE_OTHER_AMOUNT,
            (f"amount differs from the {_fmt(due, line.currency)} due"),
        )
    targets = []
    left = amount
    for inv in invoices:
        part = min(left, state.invoice_due[inv.id])
        if part <= 0:
            break
        targets.append(Target("invoice", inv.id, part))
        state.invoice_due[inv.id] -= part
        left -= part
    return Proposal(
        (line.id,),
        tuple(targets),
        confidence,
        "reference",
        f"invoice number {numbers} in the remittance text; {how}",
        amount,
        line.currency,
        customer_id=invoices[0].customer_id,
    )


# --- rule b: amount + date + counterparty -----------------------------------------------


def _line_customers(line: BankLine, index: _Index) -> tuple[set[int], Alias | None]:
    alias = _alias_for(line, index)
    if alias is not None and alias.customer_id is not None:
        return {alias.customer_id}, alias
    name = normalize_name(line.counterparty_name)
    return set(index.customers_by_name.get(name, ())), None


def _by_counterparty(
    line: BankLine, index: _Index, state: _State, config: Config
) -> Proposal | None:
    amount = line.amount
    if amount > 0:
        customers, alias = _line_customers(line, index)
        if not customers:
            return None
        return _customer_amount(line, customers, alias, index, state, config)
    return _vendor_amount(line, index, state, config)


def _customer_amount(
    line: BankLine,
    customers: set[int],
    alias: Alias | None,
    index: _Index,
    state: _State,
    config: Config,
    *,
    fuzzy_score: float | None = None,
) -> Proposal | None:
    amount = line.amount
    window = config.date_window_days
    candidates = [
        index.invoices[i]
        for i in index.invoices_by_amount.get((line.currency, amount), ())
        if index.invoices[i].customer_id in customers and state.invoice_due[i] == amount
    ]
    in_window = [i for i in candidates if _within(i.due_date, line.booking_date, window)]
    how = _learned(alias) if alias is not None else "counterparty name equal"
    if fuzzy_score is not None:
        how = f"counterparty name similar ({fuzzy_score:.0f}%)"
    base = C_LEARNED if alias is not None else C_COUNTERPARTY
    if fuzzy_score is not None:
        base = _fuzzy_confidence(fuzzy_score)
    chosen: OpenInvoice | None = None
    if len(in_window) == 1:
        chosen, confidence = in_window[0], base
        why = f"amount equals invoice {chosen.number}, due within {window} days; {how}"
    elif in_window:
        chosen = min(in_window, key=lambda i: (abs((i.due_date - line.booking_date).days), i.id))
        confidence = C_COUNTERPARTY_AMBIGUOUS
        why = (
            f"amount equals {len(in_window)} invoices due within {window} days; "
            f"{chosen.number} is the closest; {how}"
        )
    elif candidates:
        chosen = min(candidates, key=lambda i: (abs((i.due_date - line.booking_date).days), i.id))
        confidence = min(base, C_COUNTERPARTY_OUT_OF_WINDOW)
        why = f"amount equals invoice {chosen.number}, due outside {window} days; {how}"
    if chosen is not None:
        state.invoice_due[chosen.id] -= amount
        return Proposal(
            (line.id,),
            (Target("invoice", chosen.id, amount),),
            confidence,
            "fuzzy_name" if fuzzy_score is not None else "amount_date_counterparty",
            why,
            amount,
            line.currency,
            customer_id=chosen.customer_id,
        )
    # An unreconciled payment of the customer with the same amount around the date.
    for customer_id in sorted(customers):
        for pid in index.payments_by_customer_amount.get((customer_id, line.currency, amount), ()):
            p = index.payments[pid]
            if pid in state.used_payments or not _within(
                p.received_date, line.booking_date, window
            ):
                continue
            state.used_payments.add(pid)
            return Proposal(
                (line.id,),
                (Target("payment", pid, amount),),
                base,
                "fuzzy_name" if fuzzy_score is not None else "amount_date_counterparty",
                f"amount equals payment {pid} received within {window} days; {how}",
                amount,
                line.currency,
                customer_id=customer_id,
            )
    return None


def _vendor_amount(line: BankLine, index: _Index, state: _State, config: Config) -> Proposal | None:
    out = -line.amount
    window = config.date_window_days
    name = normalize_name(line.counterparty_name)
    if name:
        for item_id in index.items_by_vendor_amount.get((name, line.currency, out), ()):
            item, run = index.items[item_id]
            if item_id in state.used_items or run.id in state.used_runs:
                continue
            if not _within(run.payment_date, line.booking_date, window):
                continue
            state.used_items.add(item_id)
            return Proposal(
                (line.id,),
                (Target("payment_run_item", item_id, out),),
                C_COUNTERPARTY,
                "amount_date_counterparty",
                f"amount equals the payment to {item.vendor_name} in run {run.number}, paid "
                f"within {window} days",
                line.amount,
                line.currency,
                vendor_id=item.vendor_id,
            )
    runs = [
        index.runs[r]
        for r in index.runs_by_total.get((line.currency, out), ())
        if r not in state.used_runs
        and not any(i.id in state.used_items for i in index.runs[r].items)
        and _within(index.runs[r].payment_date, line.booking_date, window)
    ]
    if runs:
        run = min(runs, key=lambda r: (abs((r.payment_date - line.booking_date).days), r.id))
        state.used_runs.add(run.id)
        return Proposal(
            (line.id,),
            (Target("payment_run", run.id, out),),
            C_RUN_TOTAL if len(runs) == 1 else C_COUNTERPARTY_AMBIGUOUS,
            "amount_date_counterparty",
            f"debit equals the total of payment run {run.number} paid within {window} days "
            "(one batch debit)",
            line.amount,
            line.currency,
        )
    return None


# --- rule c: fuzzy counterparty name -----------------------------------------------------


def _fuzzy_confidence(score: float) -> Decimal:
    """85% similar -> 0.70, 100% -> 0.94: a fuzzy name alone never applies automatically."""
    span = (Decimal(str(round(score, 1))) - Decimal(str(FUZZY_CUTOFF))) / (
        Decimal(100) - Decimal(str(FUZZY_CUTOFF))
    )
    value = C_FUZZY_MIN + (C_FUZZY_MAX - C_FUZZY_MIN) * max(ZERO, min(Decimal(1), span))
    return value.quantize(Decimal("0.0001"))


def _by_fuzzy_name(line: BankLine, index: _Index, state: _State, config: Config) -> Proposal | None:
    if line.amount <= 0:
        return None
    name = normalize_name(line.counterparty_name)
    if not name:
        return None
    invoice_ids = index.invoices_by_amount.get((line.currency, line.amount), ())
    if not invoice_ids:
        return None
    names: dict[int, str] = {}
    for i in invoice_ids[:FUZZY_MAX_CANDIDATES]:
        inv = index.invoices[i]
        if state.invoice_due[i] == line.amount:
            names[inv.customer_id] = index.customer_names[inv.customer_id]
    if not names:
        return None
    best = process.extract(
        name, names, scorer=fuzz.token_sort_ratio, score_cutoff=config.fuzzy_cutoff, limit=2
    )
    if not best:
        return None
    _, score, customer_id = best[0]
    if len(best) > 1 and best[1][1] == score:
        return None  # two customers equally similar: nothing to say
    return _customer_amount(line, {customer_id}, None, index, state, config, fuzzy_score=score)


# --- rule d: one line, several invoices; one invoice, several lines ----------------------


def subset_sum(
    amounts: Sequence[tuple[int, Decimal]], total: Decimal, *, max_steps: int = SUBSET_MAX_STEPS
) -> tuple[int, ...] | None:
    """Ids of a subset whose amounts add up to ``total`` (the first found in a bounded depth-
    first search over at most SUBSET_MAX_ITEMS amounts), or None."""
    items = sorted(amounts, key=lambda a: (-a[1], a[0]))[:SUBSET_MAX_ITEMS]
    suffix = [ZERO] * (len(items) + 1)
    for k in range(len(items) - 1, -1, -1):
        suffix[k] = suffix[k + 1] + items[k][1]
    steps = 0
    stack: list[tuple[int, Decimal, tuple[int, ...]]] = [(0, total, ())]
    while stack:
        k, left, chosen = stack.pop()
        steps += 1
        if steps > max_steps:
            return None
        if left == 0 and len(chosen) > 1:
            return chosen
        if k >= len(items) or left < 0 or suffix[k] < left:
            continue
        stack.append((k + 1, left, chosen))
        if items[k][1] <= left:
            stack.append((k + 1, left - items[k][1], (*chosen, items[k][0])))
    return None


def _by_several(line: BankLine, index: _Index, state: _State) -> Proposal | None:
    if line.amount <= 0:
        return None
    customers, alias = _line_customers(line, index)
    if len(customers) != 1:
        return None
    (customer_id,) = customers
    open_ids = [
        i
        for i in index.invoices_by_customer.get(customer_id, ())
        if state.invoice_due[i] > 0 and index.invoices[i].currency == line.currency
    ]
    if not open_ids:
        return None
    who = _learned(alias) if alias is not None else "counterparty name equal"
    found = subset_sum([(i, state.invoice_due[i]) for i in open_ids], line.amount)
    if found:
        invoices = sorted((index.invoices[i] for i in found), key=lambda i: (i.due_date, i.id))
        targets = tuple(Target("invoice", i.id, state.invoice_due[i.id]) for i in invoices)
        for i in invoices:
            state.invoice_due[i.id] = ZERO
        return Proposal(
            (line.id,),
            targets,
            C_SUBSET,
            "several_invoices",
            f"amount equals the sum of {len(invoices)} open invoices "
            f"({', '.join(i.number for i in invoices)}); {who}",
            line.amount,
            line.currency,
            customer_id=customer_id,
        )
    if len(open_ids) == 1 and line.amount < state.invoice_due[open_ids[0]]:
        inv = index.invoices[open_ids[0]]
        state.invoice_due[inv.id] -= line.amount
        return Proposal(
            (line.id,),
            (Target("invoice", inv.id, line.amount),),
            C_PARTIAL,
            "partial_payment",
            f"part of the {_fmt(inv.amount_due, inv.currency)} due on {inv.number}, the "
            f"customer's only open invoice; {who}",
            line.amount,
            line.currency,
            customer_id=customer_id,
        )
    return None


# --- payouts: one deposit, many card payments -------------------------------------------


class _PayoutIndex:
    def __init__(self, payouts: Sequence[OpenPayout]) -> None:
        self.payouts = {p.id: p for p in payouts}
        self.by_ref: dict[str, int] = {}
        self.by_amount: dict[tuple[str, Decimal], list[int]] = defaultdict(list)
        for p in payouts:
            ref = normalize_reference(p.external_id)
            if len(ref) >= 4:
                self.by_ref[ref] = p.id
            self.by_amount[(p.currency, p.amount)].append(p.id)


def _payout_proposal(
    line: BankLine, payout: OpenPayout, confidence: Decimal, how: str, state: _State
) -> Proposal:
    state.used_payouts.add(payout.id)
    return Proposal(
        (line.id,),
        (Target("payout", payout.id, abs(line.amount)),),
        confidence,
        "payout",
        f"{PAYOUT_TITLES.get(payout.provider, payout.provider.capitalize() + ' payout')} "
        f"{payout.external_id} of "
        f"{_fmt(payout.amount, payout.currency)} arriving {payout.arrival_date.isoformat()}; "
        f"{how}",
        line.amount,
        line.currency,
    )


def _by_payout_reference(line: BankLine, index: _PayoutIndex, state: _State) -> Proposal | None:
    if not index.payouts:
        return None
    for token in sorted(
        reference_tokens(line.description, line.bank_reference, line.end_to_end_id)
    ):
        pid = index.by_ref.get(token)
        if pid is None or pid in state.used_payouts:
            continue
        payout = index.payouts[pid]
        # Another amount cannot be applied (the deposit must equal the payout): not proposed.
        if payout.currency == line.currency and payout.amount == line.amount:
            return _payout_proposal(
                line, payout, C_PAYOUT_REFERENCE, "payout id in the bank text, same amount", state
            )
    return None


def _names_processor(line: BankLine, provider: str) -> bool:
    text = f"{line.counterparty_name} {line.description} {line.bank_reference}".upper()
    return any(name in text for name in PROCESSOR_NAMES.get(provider, (provider.upper(),)))


def _by_payout_amount(
    line: BankLine, index: _PayoutIndex, state: _State, config: Config
) -> Proposal | None:
    if not index.payouts:
        return None
    window = config.date_window_days
    fits = [
        index.payouts[pid]
        for pid in index.by_amount.get((line.currency, line.amount), ())
        if pid not in state.used_payouts
        and _within(index.payouts[pid].arrival_date, line.booking_date, window)
        and _names_processor(line, index.payouts[pid].provider)
    ]
    if not fits:
        return None
    payout = min(fits, key=lambda p: (abs((p.arrival_date - line.booking_date).days), p.id))
    if len(fits) == 1:
        how = f"amount equal, arriving within {window} days, the processor named in the line"
        return _payout_proposal(line, payout, C_PAYOUT_AMOUNT, how, state)
    how = (
        f"amount equals {len(fits)} payouts arriving within {window} days; this one arrives "
        "closest to the booking date"
    )
    return _payout_proposal(line, payout, C_PAYOUT_AMBIGUOUS, how, state)


# --- rule e: user rules ------------------------------------------------------------------


def rule_applies(rule: Rule, line: BankLine) -> bool:
    if rule.sign == "credit" and line.amount <= 0:
        return False
    if rule.sign == "debit" and line.amount >= 0:
        return False
    size = abs(line.amount)
    if rule.amount_min is not None and size < rule.amount_min:
        return False
    if rule.amount_max is not None and size > rule.amount_max:
        return False
    if rule.text_contains:
        haystack = f"{line.description} {line.bank_reference} {line.counterparty_name}".upper()
        if rule.text_contains.upper() not in haystack:
            return False
    if rule.counterparty_name_equals and normalize_name(line.counterparty_name) != (
        normalize_name(rule.counterparty_name_equals)
    ):
        return False
    return not (
        rule.counterparty_account_equals
        and normalize_account(line.counterparty_account)
        != normalize_account(rule.counterparty_account_equals)
    )


def _by_rule(line: BankLine, rules: Sequence[Rule]) -> Proposal | None:
    for rule in rules:
        if rule_applies(rule, line):
            return Proposal(
                (line.id,),
                (Target("account", rule.account_id, abs(line.amount)),),
                C_RULE,
                "user_rule",
                f"rule {rule.name or rule.id!s} (priority {rule.priority})",
                line.amount,
                line.currency,
                rule_id=rule.id,
            )
    return None


def match_lines(
    lines: Iterable[BankLine],
    *,
    invoices: Sequence[OpenInvoice] = (),
    payments: Sequence[OpenPayment] = (),
    runs: Sequence[OpenRun] = (),
    rules: Sequence[Rule] = (),
    aliases: Sequence[Alias] = (),
    config: Config | None = None,
    payouts: Sequence[OpenPayout] = (),
) -> list[Proposal]:
    """Proposals for the lines, at most one per line, never promising more of an item than
    is open. Lines are taken in booking-date order, so the earliest of several partial
    payments of one invoice comes first. Deterministic for the same input."""
    config = config or Config()
    index = _Index(invoices, payments, runs, aliases)
    payout_index = _PayoutIndex(payouts)
    state = _State(invoice_due={i.id: i.amount_due for i in invoices})
    ordered = sorted(lines, key=lambda line: (line.booking_date, line.id))
    rules_sorted = sorted(rules, key=lambda r: (r.priority, r.id))
    proposals: list[Proposal] = []
    rest: list[BankLine] = []
    # Pass 1 over every line first: an explicit reference beats any guess by another line.
    for line in ordered:
        if line.amount == 0:
            continue
        proposal = _by_payout_reference(line, payout_index, state) or _by_reference(
            line, index, state
        )
        if proposal is not None:
            proposals.append(proposal)
        else:
            rest.append(line)
    later: list[BankLine] = []
    for line in rest:
        proposal = _by_payout_amount(line, payout_index, state, config) or _by_counterparty(
            line, index, state, config
        )
        if proposal is None:
            later.append(line)
        else:
            proposals.append(proposal)
    last: list[BankLine] = []
    for line in later:
        proposal = _by_fuzzy_name(line, index, state, config) or _by_several(line, index, state)
        if proposal is None:
            last.append(line)
        else:
            proposals.append(proposal)
    for line in last:
        proposal = _by_rule(line, rules_sorted)
        if proposal is not None:
            proposals.append(proposal)
    return proposals
