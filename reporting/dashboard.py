"""The finance dashboard's figures as of a day, for one person: only the panels their role
may see, each figure with the sentence that says how it is computed (the page's tooltip and
the API's ``how``).

Who sees what: AR aging for those who may view invoices (``billing.view_invoice``), AP aging
for those who may view bills (``payables.view_bill``); cash, the ratios, MRR, payment success
and the projection for ``reporting.view_financial_reports``; each work-queue count for those
who may view that queue's model. Every panel is a few grouped queries (sums and counts per
currency by the database); money stays per currency, never added across currencies.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Count, DecimalField, OuterRef, Q, Subquery
from django.db.models.functions import TruncDate
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from billing.enums import InvoiceStatus
from billing.models import Invoice
from billing.models.processors import AttemptStatus
from core.aging import BUCKETS, AgingBucket, aging_totals
from core.ledger.selectors import accounts_balances
from core.models import TaskFailure, TaskFailureStatus
from payables.selectors import payables_totals_and_count
from receivables.models_disputes import ACTIVE_DISPUTE_STATUSES, Dispute
from receivables.selectors import collections_paused_overdue
from reconciliation.enums import ExceptionStatus, MatchStatus
from reconciliation.models import BankAccount, Match, ReconciliationException, Statement
from reporting.kpis import (
    KPIS,
    KpiUnit,
    attempts_started,
    kpi_approvals_waiting,
    kpi_values,
    mrr_movement,
    open_receivables_by_due,
    open_receivables_by_due_if_read,
)
from reporting.memo import shared_reads
from reporting.projection import CashFlowProjection, cash_flow_projection

FINANCIAL = "reporting.view_financial_reports"
AR_PERMISSION = "billing.view_invoice"
AP_PERMISSION = "payables.view_bill"
BUCKET_LABELS = dict(AgingBucket.choices)
ZERO = Decimal(0)
CENT = Decimal("0.01")
SUCCESS_WEEKS = 12
PROJECTION_WEEKS = 13
RATIO_CODES = ("dso_30", "dso_90", "dpo_30", "dpo_90", "cei_30", "cei_90")
MOVEMENTS = ("new", "expansion", "contraction", "churn", "reactivation")


@dataclass(frozen=True, slots=True)
class Figure:
    """One figure: per currency for money (``{"USD": ...}``), else under ``""``."""

    code: str
    label: str
    unit: str
    how: str
    values: dict[str, Decimal]


@dataclass(frozen=True, slots=True)
class CashAccountRow:
    bank_account_id: int
    name: str
    currency: str
    book_balance: Decimal
    statement_balance: Decimal | None
    statement_date: date | None


@dataclass(frozen=True, slots=True)
class CashPanel:
    how: str
    statement_how: str
    accounts: list[CashAccountRow]
    # Cash per currency: the bank accounts and the cash / clearing accounts of the ledger.
    total: Figure


@dataclass(frozen=True, slots=True)
class AgingPanel:
    key: str
    title: str
    how: str
    # currency -> bucket -> amount, plus "total".
    totals: dict[str, dict[str, Decimal]]
    item_count: int
    link: str


@dataclass(frozen=True, slots=True)
class MrrPanel:
    mrr: Figure
    arr: Figure
    # currency -> movement -> amount (new, expansion, contraction, churn, reactivation).
    movement: dict[str, dict[str, Decimal]]
    movement_how: dict[str, str]


@dataclass(frozen=True, slots=True)
class SuccessSeries:
    label: str
    # One rate per week (percent, 2 places); None in a week with no attempt.
    rates: list[Decimal | None]
    attempted: int
    succeeded: int


@dataclass(frozen=True, slots=True)
class PaymentSuccessPanel:
    how: str
    # The last day of each of the weeks, oldest first.
    week_ends: list[date]
    by_processor: list[SuccessSeries]
    by_method: list[SuccessSeries]
    top_decline_codes: list[tuple[str, int]]
    attempted: int
    succeeded: int


@dataclass(frozen=True, slots=True)
class QueueCount:
    code: str
    label: str
    how: str
    count: int
    link: str


@dataclass(frozen=True, slots=True)
class Dashboard:
    as_of: date
    counts: list[QueueCount] = field(default_factory=list)
    cash: CashPanel | None = None
    ar: AgingPanel | None = None
    ap: AgingPanel | None = None
    ratios: list[Figure] | None = None
    mrr: MrrPanel | None = None
    payments: PaymentSuccessPanel | None = None
    projection: list[CashFlowProjection] | None = None
    projection_how: str = ""


def _link(name: str, query: str = "") -> str:
    try:
        url = reverse(name)
    except NoReverseMatch:  # a screen not mounted in this deployment
        return ""
    return f"{url}?{query}" if query else url


def _ratio(numerator: int, denominator: int) -> Decimal | None:
    if not denominator:
        return None
    return (Decimal(numerator) * 100 / denominator).quantize(CENT, rounding=ROUND_HALF_UP)


# --- Cash ------------------------------------------------------------------------------------


def cash_panel(*, as_of: date) -> CashPanel:
    """Each bank account's book balance (its ledger account, in its currency) beside the
    closing balance of its last statement closed by ``as_of``: three queries."""
    last = Statement.objects.filter(
        bank_account=OuterRef("pk"), closing_balance__isnull=False, closing_date__lte=as_of
    ).order_by("-closing_date", "-pk")
    accounts = list(
        BankAccount.objects.filter(Q(is_active=True) | Q(created_at__date__lte=as_of))
        .annotate(
            statement_balance=Subquery(
                last.values("closing_balance")[:1],
                output_field=DecimalField(max_digits=19, decimal_places=4),
            ),
            statement_date=Subquery(last.values("closing_date")[:1]),
        )
        .order_by("name", "pk")
    )
    balances = {
        key: balance.balance
        for key, balance in accounts_balances(
            account_ids={a.ledger_account_id for a in accounts}, as_of=as_of
        ).items()
    }
    rows = [
        CashAccountRow(
            bank_account_id=a.pk,
            name=a.name,
            currency=a.currency,
            book_balance=balances.get((a.ledger_account_id, a.currency), ZERO),
            statement_balance=a.statement_balance,
            statement_date=a.statement_date,
        )
        for a in accounts
        if a.is_active or balances.get((a.ledger_account_id, a.currency))
    ]
    kpi = KPIS["cash"]
    return CashPanel(
        how="Book balance: the ledger balance of the bank account's ledger account at the end "
        "of the day, in the account's currency.",
        statement_how="Closing balance of the last imported statement that closed on or before "
        "the day.",
        accounts=rows,
        total=Figure(kpi.code, kpi.label, kpi.unit, kpi.how, kpi.value(as_of=as_of)),
    )


# --- Aging -----------------------------------------------------------------------------------

_AGING_HOW = (
    "Open {items} issued by the day, each one's amount still due, by days past its due date "
    "(current = not yet due); summed per currency."
)


def ar_panel(*, as_of: date) -> AgingPanel:
    totals, count = aging_totals(open_receivables_by_due(as_of=as_of), as_of=as_of)
    return AgingPanel(
        key="ar",
        title="Accounts receivable",
        how=_AGING_HOW.format(items="invoices"),
        totals=totals,
        item_count=count,
        link=_link("admin:reporting_ar_aging", f"as_of={as_of.isoformat()}"),
    )


def ap_panel(*, as_of: date) -> AgingPanel:
    totals, count = payables_totals_and_count(as_of=as_of)
    return AgingPanel(
        key="ap",
        title="Accounts payable",
        how=_AGING_HOW.format(items="vendor bills"),
        totals=totals,
        item_count=count,
        link=_link("admin:reporting_ap_aging", f"as_of={as_of.isoformat()}"),
    )


# --- Ratios and MRR --------------------------------------------------------------------------


def ratio_figures(*, as_of: date) -> list[Figure]:
    values = kpi_values(as_of=as_of, codes=RATIO_CODES)
    out = []
    for code in RATIO_CODES:
        kpi = KPIS[code]
        per = {v.currency: v.value for v in values if v.kpi.code == code}
        out.append(Figure(code, kpi.label, kpi.unit, kpi.how, per))
    return out


def mrr_panel(*, as_of: date) -> MrrPanel:
    """MRR and ARR at the day and the month's movement, from one MRR rebuild at each end
    of the month."""
    moves = mrr_movement(as_of=as_of)
    mrr = {c: m.closing for c, m in moves.items() if m.closing}
    return MrrPanel(
        mrr=Figure("mrr", KPIS["mrr"].label, KpiUnit.MONEY, KPIS["mrr"].how, mrr),
        arr=Figure(
            "arr",
            KPIS["arr"].label,
            KpiUnit.MONEY,
            KPIS["arr"].how,
            {c: v * 12 for c, v in mrr.items()},
        ),
        movement={c: {part: getattr(m, part) for part in MOVEMENTS} for c, m in moves.items()},
        movement_how={part: KPIS[f"mrr_{part}"].how for part in MOVEMENTS},
    )


# --- Payment success -------------------------------------------------------------------------


def payment_success_panel(
    *, as_of: date, weeks: int = SUCCESS_WEEKS, top: int = 5
) -> PaymentSuccessPanel:
    """The weekly success rate of processor charges by processor and by payment method over
    the ``weeks`` weeks ending on ``as_of``, and the most frequent decline codes: one
    query grouped by day, processor, method, status and decline code."""
    first = as_of - timedelta(days=7 * weeks - 1)
    rows = (
        attempts_started(first, as_of)
        .annotate(day=TruncDate("created_at"))
        .values("day", "processor", "payment_method__type", "status", "failure_code")
        .annotate(n=Count("pk"))
        .order_by()
    )
    tally: dict[tuple[str, str], list[list[int]]] = defaultdict(
        lambda: [[0, 0] for _ in range(weeks)]
    )
    codes: dict[str, int] = defaultdict(int)
    attempted = succeeded = 0
    for r in rows:
        week = (r["day"] - first).days // 7
        ok = r["n"] if r["status"] == AttemptStatus.SUCCEEDED else 0
        for key in (("processor", r["processor"]), ("method", r["payment_method__type"] or "")):
            tally[key][week][0] += r["n"]
            tally[key][week][1] += ok
        attempted += r["n"]
        succeeded += ok
        if r["status"] == AttemptStatus.FAILED and r["failure_code"]:
            codes[r["failure_code"]] += r["n"]

    def series(kind: str) -> list[SuccessSeries]:
        return [
            SuccessSeries(
                label=name or "(unknown)",
                rates=[_ratio(ok, n) for n, ok in counts],
                attempted=sum(n for n, _ok in counts),
                succeeded=sum(ok for _n, ok in counts),
            )
            for (k, name), counts in sorted(tally.items())
            if k == kind
        ]

    return PaymentSuccessPanel(
        how="Processor charges that succeeded / charges attempted (finished or unknown) in each "
        "week x 100, by processor and by payment method; pending charges are left out.",
        week_ends=[first + timedelta(days=7 * i + 6) for i in range(weeks)],
        by_processor=series("processor"),
        by_method=series("method"),
        top_decline_codes=sorted(codes.items(), key=lambda c: (-c[1], c[0]))[:top],
        attempted=attempted,
        succeeded=succeeded,
    )


# --- Work-queue counts -----------------------------------------------------------------------


def _week(as_of: date) -> tuple[date, date]:
    monday = as_of - timedelta(days=as_of.weekday())
    return monday, monday + timedelta(days=6)


def overdue_today(as_of: date) -> int:
    """How many of today's open invoices are due before ``as_of``: from the AR panel's read
    when the page has made it (``open_receivables_by_due``), else counted."""
    rows = open_receivables_by_due_if_read(as_of=timezone.localdate())
    if rows is None:
        return Invoice.objects.filter(status=InvoiceStatus.OPEN, due_date__lt=as_of).count()
    return sum(n for _currency, due, _amount, n in rows if due < as_of)


def queue_counts(user: Any, *, as_of: date) -> list[QueueCount]:
    """The work waiting, each count linking into its queue, for the queues ``user`` may
    view. Queues are today's: a document since decided leaves its queue."""
    out: list[QueueCount] = []
    if user.has_perm("payables.view_approval"):
        out.append(
            QueueCount(
                "approvals_waiting",
                KPIS["approvals_waiting"].label,
                KPIS["approvals_waiting"].how,
                int(kpi_approvals_waiting(as_of=as_of)[""]),
                _link("approvals:inbox"),
            )
        )
    if user.has_perm("reconciliation.view_match"):
        out.append(
            QueueCount(
                "reconciliation_suggestions",
                "Reconciliation suggestions",
                "Proposed matches of bank lines waiting to be applied or rejected.",
                Match.objects.filter(status=MatchStatus.PROPOSED).count(),
                _link("admin:reconciliation_match_changelist", "status__exact=proposed"),
            )
        )
    if user.has_perm("reconciliation.view_reconciliationexception"):
        out.append(
            QueueCount(
                "open_reconciliation_exceptions",
                "Open exceptions",
                "Reconciliation exceptions (unmatched lines, balance breaks) not yet resolved.",
                ReconciliationException.objects.filter(status=ExceptionStatus.OPEN).count(),
                _link(
                    "admin:reconciliation_reconciliationexception_changelist",
                    "status__exact=open",
                ),
            )
        )
    if user.has_perm("receivables.view_collectionsworklistitem"):
        out.append(
            QueueCount(
                "collections_worklist",
                "Collections worklist",
                "Open invoices past their due date and not paused: what the collections team "
                "chases today.",
                overdue_today(as_of) - collections_paused_overdue(as_of=as_of),
                _link("admin:receivables_collectionsworklistitem_changelist"),
            )
        )
    if user.has_perm("reconciliation.view_reconciliationexception"):
        out.append(
            QueueCount(
                "my_reconciliation_exceptions",
                "Exceptions assigned to me",
                "Open reconciliation exceptions whose assignee is you.",
                ReconciliationException.objects.filter(
                    status=ExceptionStatus.OPEN, assignee_id=user.pk
                ).count(),
                _link(
                    "admin:reconciliation_reconciliationexception_changelist",
                    "mine=yes&status__exact=open",
                ),
            )
        )
    if user.has_perm("receivables.view_dispute"):
        monday, sunday = _week(as_of)
        out.append(
            QueueCount(
                "disputes_evidence_due",
                "Dispute evidence due this week",
                "Open or under-review disputes whose evidence is due between Monday and Sunday "
                "of this week.",
                Dispute.objects.filter(
                    status__in=ACTIVE_DISPUTE_STATUSES,
                    evidence_due_by__date__gte=monday,
                    evidence_due_by__date__lte=sunday,
                ).count(),
                _link(
                    "admin:receivables_dispute_changelist",
                    f"evidence_due_by__date__gte={monday.isoformat()}"
                    f"&evidence_due_by__date__lte={sunday.isoformat()}",
                ),
            )
        )
    if user.has_perm(AR_PERMISSION):
        out.append(
            QueueCount(
                "overdue_invoices",
                "Overdue invoices",
                "Open invoices whose due date has passed.",
                overdue_today(as_of),
                _link("admin:billing_invoice_changelist", "overdue=yes"),
            )
        )
    if user.has_perm("core.view_taskfailure"):
        out.append(
            QueueCount(
                "failed_tasks",
                "Failed tasks",
                "Background tasks that gave up after their retries and are not recovered.",
                TaskFailure.objects.filter(status=TaskFailureStatus.FAILED).count(),
                _link("admin:core_taskfailure_changelist", "status__exact=failed"),
            )
        )
    return out


# --- The whole -------------------------------------------------------------------------------

PROJECTION_HOW = (
    "From today's cash: open invoices expected on each customer's usual delay, subscription "
    "renewals, instalments, and bills and payment runs by their due dates; the band is the "
    "10th to 90th percentile of simulated payment delays (on a book with too many uncertain "
    "receipts to simulate, of the normal distribution with their exact mean and variance), "
    "the line the point estimate."
)


def dashboard_figures(user: Any, as_of: date) -> Dashboard:
    """The panels ``user`` may see, as of the end of ``as_of`` (what several panels read,
    read once: ``shared_reads``)."""
    financial = user.has_perm(FINANCIAL)
    with shared_reads():
        return _dashboard_figures(user, as_of, financial)


def _dashboard_figures(user: Any, as_of: date, financial: bool) -> Dashboard:
    # AR first: the queue counts use its read of the open invoices.
    ar = ar_panel(as_of=as_of) if user.has_perm(AR_PERMISSION) else None
    return Dashboard(
        as_of=as_of,
        counts=queue_counts(user, as_of=as_of),
        cash=cash_panel(as_of=as_of) if financial else None,
        ar=ar,
        ap=ap_panel(as_of=as_of) if user.has_perm(AP_PERMISSION) else None,
        ratios=ratio_figures(as_of=as_of) if financial else None,
        mrr=mrr_panel(as_of=as_of) if financial else None,
        payments=payment_success_panel(as_of=as_of) if financial else None,
        projection=(
            cash_flow_projection(as_of=as_of, weeks=PROJECTION_WEEKS) if financial else None
        ),
        projection_how=PROJECTION_HOW if financial else "",
    )


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.4f}"


def _figure_json(f: Figure) -> dict[str, Any]:
    return {
        "code": f.code,
        "label": f.label,
        "unit": f.unit,
        "how": f.how,
        "values": [{"currency": c, "value": _money(v)} for c, v in sorted(f.values.items())],
    }


def _aging_json(p: AgingPanel) -> dict[str, Any]:
    return {
        "how": p.how,
        "item_count": p.item_count,
        "currencies": [
            {
                "currency": currency,
                "total": _money(amounts.get("total", ZERO)),
                "buckets": [
                    {"bucket": b, "label": BUCKET_LABELS[b], "amount": _money(amounts.get(b, ZERO))}
                    for b in BUCKETS
                ],
            }
            for currency, amounts in sorted(p.totals.items())
        ],
    }


def dashboard_json(d: Dashboard) -> dict[str, Any]:
    """The dashboard as plain JSON types: amounts as decimal strings with 4 places, a panel
    the person may not see as null."""

    def series(rows: list[SuccessSeries]) -> list[dict[str, Any]]:
        return [
            {
                "label": s.label,
                "attempted": s.attempted,
                "succeeded": s.succeeded,
                "rates": [_money(r) for r in s.rates],
            }
            for s in rows
        ]

    return {
        "as_of": d.as_of.isoformat(),
        "counts": [
            {"code": c.code, "label": c.label, "how": c.how, "count": c.count, "link": c.link}
            for c in d.counts
        ],
        "cash": None
        if d.cash is None
        else {
            "how": d.cash.how,
            "statement_how": d.cash.statement_how,
            "accounts": [
                {
                    "bank_account_id": a.bank_account_id,
                    "name": a.name,
                    "currency": a.currency,
                    "book_balance": _money(a.book_balance),
                    "statement_balance": _money(a.statement_balance),
                    "statement_date": a.statement_date.isoformat() if a.statement_date else None,
                }
                for a in d.cash.accounts
            ],
            "total": _figure_json(d.cash.total),
        },
        "ar": None if d.ar is None else _aging_json(d.ar),
        "ap": None if d.ap is None else _aging_json(d.ap),
        "ratios": None if d.ratios is None else [_figure_json(f) for f in d.ratios],
        "mrr": None
        if d.mrr is None
        else {
            "mrr": _figure_json(d.mrr.mrr),
            "arr": _figure_json(d.mrr.arr),
            "movement_how": d.mrr.movement_how,
            "movement": [
                {"currency": c, **{part: _money(v) for part, v in parts.items()}}
                for c, parts in sorted(d.mrr.movement.items())
            ],
        },
        "payment_success": None
        if d.payments is None
        else {
            "how": d.payments.how,
            "attempted": d.payments.attempted,
            "succeeded": d.payments.succeeded,
            "week_ends": [w.isoformat() for w in d.payments.week_ends],
            "by_processor": series(d.payments.by_processor),
            "by_method": series(d.payments.by_method),
            "top_decline_codes": [
                {"code": code, "count": n} for code, n in d.payments.top_decline_codes
            ],
        },
        "projection": None
        if d.projection is None
        else {
            "how": d.projection_how,
            "currencies": [
                {
                    "currency": p.currency,
                    "opening_cash": _money(p.opening_cash),
                    "weeks": [
                        {
                            "week": w.week,
                            "start_date": w.start_date.isoformat(),
                            "end_date": w.end_date.isoformat(),
                            "receipts": _money(w.receipts),
                            "disbursements": _money(w.disbursements),
                            "closing_cash": _money(w.closing_cash),
                            "p10_closing_cash": _money(w.p10_closing_cash),
                            "p50_closing_cash": _money(w.p50_closing_cash),
                            "p90_closing_cash": _money(w.p90_closing_cash),
                        }
                        for w in p.weeks
                    ],
                }
                for p in d.projection
            ],
        },
    }
