"""The workspace sidebar: the admin's models grouped by domain, in the order a finance team
works through them, each with an icon (Material Symbols, shipped in django-unfold's static
files).

Built per request from ``admin.site.get_app_list``, so a person sees only what their role
may view; a registered model missing from ``SECTIONS`` still appears under "More", never
silently dropped.
"""

from __future__ import annotations

from typing import Any

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
            ("ledger.Account", "account_tree"),
            ("core.FxRate", "currency_exchange"),
            ("ledger.PeriodLock", "lock_clock"),
            ("ledger.LedgerCheckRun", "fact_check"),
        ),
    ),
    (
        "Administration",
        (
            ("auth.User", "person"),
            ("auth.Group", "shield_person"),
            ("otp_totp.TOTPDevice", "phonelink_lock"),
            ("otp_static.StaticDevice", "key"),
            ("knox.AuthToken", "token"),
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
    ("AR aging", "hourglass_bottom", "billing.Invoice", "admin:reporting_ar_aging", ""),
    ("AP aging", "hourglass_top", "payables.Bill", "admin:reporting_ap_aging", ""),
)


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
    rest = [
        {"title": entry["name"], "icon": "chevron_right", "link": entry["admin_url"]}
        for _key, entry in sorted(entries.items())
    ]
    if rest:
        groups.append({"title": "More", "separator": True, "collapsible": True, "items": rest})
    return groups
