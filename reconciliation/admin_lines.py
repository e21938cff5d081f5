"""Bank statement lines in the admin: the list to work from (unmatched first, search by
text, counterparty, reference or exact amount) and, on a line's page, "Match by hand":
to one or more invoices (paid in due-date order up to the line's amount), to bills (the
payment-run payments that paid them), or to a ledger account, optionally creating a rule so
the next such line matches itself. Through
``match_manual`` and ``match_rule_create``, as the API does; their refusals on the form.

Roles: view finance_admin, ar_clerk, ap_clerk, controller, auditor; match by hand holders
of reconciliation.decide_match; the rule also needs reconciliation.add_matchrule.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import (
    Case,
    Exists,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.text import Truncator
from unfold.admin import ModelAdmin
from unfold.decorators import action

from billing.models import Invoice
from core.admin import ReadOnlyAdminMixin
from core.admin_confirm import confirm_action
from core.ledger.models import Account
from payables.enums import PaymentRunStatus
from payables.models import Bill, PaymentRunItem
from reconciliation.admin_matching import amount_money, nowrap
from reconciliation.enums import MatchStatus, MatchTargetKind, StatementLineStatus
from reconciliation.models import Match, MatchTarget, StatementLine
from reconciliation.services_matching import match_manual
from reconciliation.services_rules import match_rule_create


class BillChoice(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        paid = amount_money(obj.run_paid, obj.currency)
        return f"{obj.vendor.name} · bill {obj.number} · {paid} in run {obj.run_number}"


def bills_awaiting_bank(line: StatementLine) -> QuerySet[Bill]:
    """Bills with a released payment-run payment in the line's currency not yet matched to a
    bank line (money out only), annotated with what the run pays and its number."""
    if line.amount >= 0:
        return Bill.objects.none()
    items = PaymentRunItem.objects.filter(
        bill=OuterRef("pk"),
        currency=line.currency,
        run__status__in=(PaymentRunStatus.EXPORTED, PaymentRunStatus.PAID),
    ).exclude(
        pk__in=MatchTarget.objects.filter(
            kind=MatchTargetKind.PAYMENT_RUN_ITEM,
            match__status__in=(MatchStatus.PROPOSED, MatchStatus.APPLIED),
        ).values("payment_run_item_id")
    )
    return (
        Bill.objects.filter(Exists(items))
        .select_related("vendor")
        .annotate(
            run_paid=Subquery(items.values("bill").annotate(t=Sum("amount")).values("t")[:1]),
            run_number=Subquery(items.values("run__number")[:1]),
        )
        .order_by("vendor__name", "number")
    )


class ManualMatchForm(forms.Form):
    invoices = forms.CharField(
        label="Invoice numbers",
        required=False,
        max_length=500,
        help_text="One or more, separated by commas or spaces: paid in due-date order up to "
        "the line's amount.",
    )
    bills = BillChoice(
        label="Or bills paid by a payment run",
        queryset=Bill.objects.none(),
        required=False,
        help_text="Money out: the released payment-run payments of these bills, which must add "
        "up to the line's amount.",
    )
    account = forms.ModelChoiceField(
        label="Or a ledger account",
        queryset=Account.objects.filter(is_active=True).order_by("code"),
        required=False,
        help_text="For a bank fee, interest, a transfer: posted against the bank's account.",
    )
    create_rule = forms.BooleanField(
        label="Also create a rule: match such lines to this account from now on",
        required=False,
    )
    rule_text = forms.CharField(
        label="Rule: the bank text contains",
        required=False,
        max_length=200,
        help_text="Empty: the rule looks at the counterparty's name instead.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        numbers = [n for n in data.get("invoices", "").replace(",", " ").split() if n]
        data["invoice_numbers"] = numbers
        given = [bool(numbers), bool(data.get("bills")), bool(data.get("account"))]
        if sum(given) != 1:
            raise forms.ValidationError(
                "Give invoice numbers, bills or a ledger account (one of them)."
            )
        data["bill_ids"] = [b.pk for b in data.get("bills") or ()]
        if data.get("create_rule") and not data.get("account"):
            self.add_error("create_rule", "A rule matches lines to a ledger account.")
        if numbers:
            found = dict(Invoice.objects.filter(number__in=numbers).values_list("number", "pk"))
            missing = [n for n in numbers if n not in found]
            if missing:
                self.add_error("invoices", f"No invoice {', '.join(missing)}.")
            data["invoice_ids"] = [found[n] for n in numbers if n in found]
        return data


@admin.register(StatementLine)
class StatementLineAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("line_label", "booking_date", "amount_display", "counterparty_name",
                    "text", "status", "bank_account")  # fmt: skip
    list_display_links = ("line_label",)
    list_filter = ("status", "bank_account", "booking_date")
    list_select_related = ("bank_account",)
    search_fields = ("description", "counterparty_name", "bank_reference", "end_to_end_id")
    # Exact amounts either way round: "1,250.00" finds the debit -1,250.00 too.
    search_amount_fields = ("amount",)
    search_amount_either_sign = True
    date_hierarchy = "booking_date"
    fields = ("bank_account", "statement", "position", "booking_date", "value_date",
              "amount_display", "status", "counterparty_name", "counterparty_account",
              "description", "bank_reference", "end_to_end_id", "transaction_code",
              "matches")  # fmt: skip
    readonly_fields = fields
    actions_detail = ("match_detail",)

    # Unmatched lines first: they are the work to do.
    ordering = (
        Case(
            When(status=StatementLineStatus.UNMATCHED, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        ).asc(),
        "-booking_date",
        "-pk",
    )

    def has_match_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("reconciliation.decide_match")

    def get_actions_detail(self, request: HttpRequest, object_id: Any) -> list[Any]:
        unmatched = StatementLine.objects.filter(
            pk=unquote(str(object_id)), status=StatementLineStatus.UNMATCHED
        ).exists()
        return super().get_actions_detail(request, object_id) if unmatched else []

    @admin.display(description="Line", ordering="pk")
    def line_label(self, line: StatementLine) -> str:
        return f"Line {line.pk}"

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, line: StatementLine) -> str:
        return nowrap(amount_money(line.amount, line.currency))

    @admin.display(description="Bank text")
    def text(self, line: StatementLine) -> str:
        return Truncator(line.description).chars(50)

    @admin.display(description="Matches")
    def matches(self, line: StatementLine) -> str:
        from django.utils.html import format_html, format_html_join

        rows = Match.objects.filter(lines__line=line).distinct().order_by("pk")
        if not rows:
            return "-"
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                '<li><a href="{}">Match {}</a>: {}</li>',
                (
                    (
                        reverse("admin:reconciliation_match_change", args=[m.pk]),
                        m.pk,
                        m.get_status_display(),
                    )
                    for m in rows
                ),
            ),
        )

    @action(description="Match by hand…", url_path="match", permissions=["match"])
    def match_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        line = self.get_object(request, unquote(object_id))
        if line is None:
            raise Http404
        url = reverse("admin:reconciliation_statementline_change", args=[line.pk])

        class Form(ManualMatchForm):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                bills = bills_awaiting_bank(line)
                self.fields["bills"].queryset = bills  # type: ignore[attr-defined]
                if line.amount >= 0:
                    del self.fields["bills"]

        def run(form: forms.Form | None) -> Match:
            data = form.cleaned_data if form is not None else {}
            account = data.get("account")
            match = match_manual(
                actor=request.user,
                line_ids=[line.pk],
                invoice_ids=data.get("invoice_ids") or (),
                bill_ids=data.get("bill_ids") or (),
                account_id=account.pk if account else None,
            )
            if data.get("create_rule") and account is not None:
                text = data.get("rule_text", "").strip()
                match_rule_create(
                    actor=request.user,
                    name=f"{text or line.counterparty_name} to {account.code}"[:100],
                    account_id=account.pk,
                    bank_account_id=line.bank_account_id,
                    text_contains=text,
                    counterparty_name_equals="" if text else line.counterparty_name,
                    sign="credit" if line.amount > 0 else "debit",
                )
            return match

        def preview(form: forms.Form | None) -> Any:
            return run(form) if form is not None else None

        response = confirm_action(
            request,
            admin_site=self.admin_site,
            opts=self.model._meta,
            obj=line,
            title=f"Match bank line {line.pk} by hand",
            button="Match and post",
            perform=run,
            preview=preview,
            summary=[
                ("Bank account", str(line.bank_account)),
                ("Booked", f"{line.booking_date:%Y-%m-%d}"),
                ("Amount", amount_money(line.amount, line.currency)),
                ("Counterparty", line.counterparty_name or "-"),
                ("Bank text", line.description or "-"),
            ],
            warning="Matching posts what the line pays; only undoing the match (a reversing "
            "entry) takes it back.",
            form_class=Form,
            done_url=url,
            cancel_url=url,
            success=lambda match: f"Bank line {line.pk} matched (match {match.pk}) and posted.",
        )
        if isinstance(response, TemplateResponse):
            response.template_name = "admin/reconciliation/statementline/manual_match.html"
        return response
