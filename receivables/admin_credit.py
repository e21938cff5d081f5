"""The credit panel on billing's customer page: score, each factor (value, weight,
contribution), limit, exposure and credit hold. Read-only; registered through billing's
customer panel hook (billing does not import receivables). Shown to whoever may view the
customer (finance_admin, controller, auditor, ar_clerk)."""

from __future__ import annotations

from django.utils.html import format_html, format_html_join
from djmoney.money import Money

from billing.admin import customer_panel_register, money_display
from billing.models import Customer
from receivables.scoring import customer_credit_get

FACTOR_LABELS = {
    "average_days_late": "Average days late",
    "share_paid_late": "Share of invoices paid late",
    "disputes": "Disputes",
    "tenure": "Tenure (days)",
    "utilisation": "Utilisation of the limit",
}


def credit_panel(customer: Customer) -> str:
    credit = customer_credit_get(customer=customer)
    currency = customer.currency

    def money(value: object) -> str:
        return "none" if value is None else money_display(Money(value, currency))

    factors = format_html_join(
        "",
        '<tr class="credit-factor" data-factor="{}"><td>{}</td><td>{}</td><td>{}</td>'
        "<td>{}</td><td>{}</td></tr>",
        (
            (
                f.name,
                FACTOR_LABELS.get(f.name, f.name),
                f"{f.value:f}",
                f.weight,
                f"{f.contribution:f}",
                f.explanation,
            )
            for f in credit.score.factors
        ),
    )
    hold = (
        format_html("On hold: {}", customer.credit_hold_reason or "no reason given")
        if customer.credit_hold
        else "No"
    )
    exposure = credit.exposure
    return format_html(
        '<div class="credit-panel">'
        '<p><strong>Score</strong> <span class="credit-score">{}</span> / 100 '
        "(as of {})</p>"
        '<table class="credit-factors"><thead><tr><th>Factor</th><th>Value</th>'
        "<th>Weight</th><th>Contribution</th><th>Why</th></tr></thead><tbody>{}</tbody>"
        "</table>"
        '<p><strong>Credit limit</strong> <span class="credit-limit">{}</span></p>'
        '<p><strong>Exposure</strong> <span class="credit-exposure">{}</span> '
        "(open {} less credit balance {}{})</p>"
        '<p><strong>Available</strong> <span class="credit-available">{}</span></p>'
        '<p><strong>Credit hold</strong> <span class="credit-hold">{}</span></p>'
        "</div>",
        credit.score.score,
        credit.as_of.isoformat(),
        factors,
        money(customer.credit_limit),
        money(exposure.total),
        money(exposure.open_amount),
        money(exposure.credit_balance),
        (
            f"; {', '.join(exposure.converted_from)} at {exposure.rate_date:%Y-%m-%d} rates"
            if exposure.converted_from
            else ""
        ),
        money(credit.available),
        hold,
    )


customer_panel_register(title="Credit", render=credit_panel)
