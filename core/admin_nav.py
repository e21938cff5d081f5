"""The workspace sidebar: the admin's models grouped by domain, in the order a finance team
works through them, each with an icon (Material Symbols, shipped in django-unfold's static
files).

Built per request from ``admin.site.get_app_list``, so a person sees only what their role
may view; a registered model missing from ``SECTIONS`` still appears under "More", never
silently dropped.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

from django.contrib import admin
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

# (section title, [(app_label.ModelName or a named URL, icon)]): the order of the sidebar.
SECTIONS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Billing",
        (
            ("billing.Customer", "groups"),
            ("billing.Invoice", "receipt_long"),
            ("billing.Payment", "payments"),
            ("billing.CreditNote", "request_quote"),
            ("billing.Refund", "currency_exchange"),
            ("billing.Subscription", "autorenew"),
            ("billing.Product", "inventory_2"),
            ("billing.Price", "sell"),
            ("billing.TaxRate", "percent"),
            ("billing.PaymentMethod", "credit_card"),
            ("billing.UsageEvent", "speed"),
            ("billing.InvoiceAutopay", "event_available"),
            ("billing.CardExpiryReminder", "alarm"),
            ("billing.ProcessorAttempt", "sync_alt"),
            ("billing.WebhookEvent", "webhook"),
        ),
    ),
    (
        "Receivables",
        (
            ("receivables.CollectionsWorklistItem", "assignment_late"),
            ("receivables.Dispute", "gavel"),
            ("receivables.PaymentPlan", "event_repeat"),
            ("receivables.LateFee", "more_time"),
            ("receivables.CollectionEvent", "history"),
            ("receivables.CollectionPause", "pause_circle"),
            ("receivables.DunningPolicy", "rule"),
            ("receivables.CustomerDunningPolicy", "person_alert"),
            ("receivables.InstallmentReminder", "notifications"),
            ("receivables.ChargebackEvent", "report"),
            ("portal.PortalSession", "badge"),
            ("portal.PortalLink", "link"),
            ("portal.PortalAccess", "manage_search"),
            ("portal.DisputeMessage", "forum"),
        ),
    ),
    (
        "Payables",
        (
            ("payables.Vendor", "storefront"),
            ("payables.PurchaseOrder", "shopping_cart"),
            ("payables.Receipt", "inventory"),
            ("payables.Bill", "description"),
            ("payables.PaymentRun", "outbox"),
            ("payables.ExpenseReport", "receipt"),
            ("payables.Approval", "approval"),
            ("payables.VendorBankChange", "account_balance"),
            ("payables.ApprovalLevel", "stairs"),
            ("payables.ApprovalDelegation", "supervisor_account"),
            ("payables.ExpenseCategory", "category"),
            ("payables.MatchTolerance", "tune"),
        ),
    ),
    (
        "Reconciliation",
        (
            ("reconciliation.BankAccount", "account_balance_wallet"),
            ("reconciliation.Statement", "list_alt"),
            ("reconciliation.StatementLine", "format_list_bulleted"),
            ("reconciliation.ReconciliationException", "error"),
            ("reconciliation.Match", "join_inner"),
            ("reconciliation.MatchRule", "rule_settings"),
            ("reconciliation.Payout", "savings"),
            ("reconciliation.BankFeed", "rss_feed"),
            ("reconciliation.FeedSync", "sync"),
            ("reconciliation.ImportLog", "upload_file"),
            ("reconciliation.ReconciliationRun", "play_circle"),
            ("reconciliation.CounterpartyAlias", "badge"),
            ("reconciliation.SignOff", "verified"),
            ("reconciliation.AuditEvent", "policy"),
        ),
    ),
    (
        "Ledger",
        (
            ("ledger.JournalEntry", "menu_book"),
            ("ledger.ManualEntry", "approval"),
            ("ledger.Account", "account_tree"),
            ("core.FxRate", "currency_exchange"),
            ("ledger.MonthClose", "event_available"),
            ("ledger.PeriodLock", "lock_clock"),
            ("ledger.LedgerCheckRun", "fact_check"),
        ),
    ),
    (
        "Administration",
        (
            ("auth.User", "person"),
            ("auth.Group", "shield_person"),
            ("core.AuthenticatorDevice", "phonelink_lock"),
            ("core.RecoveryCodeDevice", "key"),
            ("knox.AuthToken", "token"),
            ("events.WebhookEndpoint", "webhook"),
            ("events.Event", "send"),
            ("events.Delivery", "outgoing_mail"),
            ("core.TaskFailure", "running_with_errors"),
            ("django_celery_beat.PeriodicTask", "schedule"),
            ("axes.AccessAttempt", "lock_person"),
            ("axes.AccessLog", "login"),
            ("axes.AccessFailureLog", "no_accounts"),
        ),
    ),
)


# Saved views of the lists a clerk starts the day with: (title, icon, app.Model whose view
# permission shows it, URL name, query string). Listed only where the person may see them.
QUEUES: tuple[tuple[str, str, str, str, str], ...] = (
    (
        "Overdue invoices",
        "event_busy",
        "billing.Invoice",
        "admin:billing_invoice_changelist",
        "overdue=yes",
    ),
    (
        "Collections worklist",
        "assignment_late",
        "receivables.CollectionsWorklistItem",
        "admin:receivables_collectionsworklistitem_changelist",
        "",
    ),
    ("Waiting for my approval", "approval", "payables.Approval", "approvals:inbox", ""),
    (
        "Open exceptions",
        "error",
        "reconciliation.ReconciliationException",
        "admin:reconciliation_reconciliationexception_changelist",
        "status__exact=open",
    ),
    (
        "Exceptions assigned to me",
        "assignment_ind",
        "reconciliation.ReconciliationException",
        "admin:reconciliation_reconciliationexception_changelist",
        "mine=yes&status__exact=open",
    ),
)


# Report screens (not models): (title, icon, permission that shows it, URL name).
REPORTS: tuple[tuple[str, str, str, str], ...] = (
    (
        "Trial balance",
        "balance",
        "reporting.view_financial_reports",
        "admin:reporting_trial_balance",
    ),
    (
        "Profit and loss",
        "trending_up",
        "reporting.view_financial_reports",
        "admin:reporting_profit_and_loss",
    ),
    (
        "Balance sheet",
        "account_balance",
        "reporting.view_financial_reports",
        "admin:reporting_balance_sheet",
    ),
    (
        "Cash-flow statement",
        "water",
        "reporting.view_financial_reports",
        "admin:reporting_cash_flow_statement",
    ),
    (
        "Tax collected",
        "receipt_long",
        "reporting.view_financial_reports",
        "admin:reporting_tax_collected",
    ),
    (
        "Payment success",
        "credit_score",
        "reporting.view_financial_reports",
        "admin:reporting_payment_success",
    ),
    (
        "KPI history",
        "show_chart",
        "reporting.view_financial_reports",
        "admin:reporting_kpi_history",
    ),
    ("AR aging", "hourglass_bottom", "billing.view_invoice", "admin:reporting_ar_aging"),
    ("AP aging", "hourglass_top", "payables.view_bill", "admin:reporting_ap_aging"),
    (
        "Compliance reports",
        "verified_user",
        "reporting.run_compliance_reports",
        "admin:reporting_compliance",
    ),
)


def _reports(request: HttpRequest) -> list[dict[str, Any]]:
    items = []
    for title, icon, perm, url_name in REPORTS:
        if not request.user.has_perm(perm):
            continue
        try:
            link = reverse(url_name)
        except NoReverseMatch:  # a report not mounted in this deployment
            continue
        items.append({"title": title, "icon": icon, "link": link})
    return items


def _mark_active(request: HttpRequest, groups: list[dict[str, Any]]) -> None:
    """One highlighted entry: of the links to the page being shown, the one whose query
    (a saved filter such as "Overdue invoices") the request carries, else the plain list."""
    index = reverse("admin:index")
    items = [item for group in groups for item in group["items"]]
    shown = parse_qs(request.GET.urlencode())

    def fits(item: dict[str, Any]) -> tuple[bool, int]:
        link = urlparse(item["link"])
        if link.path == index:
            return request.path == index, 0
        if not request.path.startswith(link.path):
            return False, 0
        wanted = parse_qs(link.query)
        if any(shown.get(k) != v for k, v in wanted.items()):
            return False, 0
        # The longer path, then the more filters it names, wins.
        return True, len(link.path) * 100 + len(wanted)

    scores = [fits(item) for item in items]
    best = max((score for ok, score in scores if ok), default=None)
    chosen = False
    for item, (ok, score) in zip(items, scores, strict=True):
        item["active"] = ok and score == best and not chosen
        chosen = chosen or item["active"]


def _queues(request: HttpRequest, entries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    items = []
    for title, icon, model, url_name, query in QUEUES:
        if model not in entries:
            continue
        try:
            link = reverse(url_name)
        except NoReverseMatch:  # a screen not mounted in this deployment
            continue
        items.append({"title": title, "icon": icon, "link": f"{link}?{query}" if query else link})
    return items


def _registered(request: HttpRequest) -> dict[str, dict[str, Any]]:
    """``app_label.ModelName`` -> the admin's own entry, for the models this person may see."""
    entries: dict[str, dict[str, Any]] = {}
    for app in admin.site.get_app_list(request):
        for model in app["models"]:
            if model.get("admin_url"):
                entries[f"{app['app_label']}.{model['object_name']}"] = model
    return entries


def navigation(request: HttpRequest) -> list[dict[str, Any]]:
    """django-unfold's ``SIDEBAR.navigation`` for this request."""
    entries = _registered(request)
    groups: list[dict[str, Any]] = []
    try:
        dashboard = reverse("admin:index")
    except NoReverseMatch:  # pragma: no cover - the admin is always mounted
        dashboard = "/admin/"
    groups.append(
        {"items": [{"title": "Dashboard", "icon": "dashboard", "link": dashboard}]},
    )
    queues = _queues(request, entries)
    if queues:
        groups.append({"title": "My work", "separator": True, "items": queues})
    for title, models in SECTIONS:
        items = []
        for key, icon in models:
            entry = entries.pop(key, None)
            if entry is not None:
                items.append({"title": entry["name"], "icon": icon, "link": entry["admin_url"]})
        if items:
            collapsible = title == "Administration"
            groups.append(
                {"title": title, "separator": True, "collapsible": collapsible, "items": items}
            )
    reports = _reports(request)
    if reports:
        groups.append({"title": "Reports", "separator": True, "items": reports})
    rest = [
        {"title": entry["name"], "icon": "chevron_right", "link": entry["admin_url"]}
        for _key, entry in sorted(entries.items())
    ]
    if rest:
        groups.append({"title": "More", "separator": True, "collapsible": True, "items": rest})
    _mark_active(request, groups)
    return groups
