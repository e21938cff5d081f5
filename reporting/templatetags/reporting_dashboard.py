"""``{% finance_dashboard %}``: the dashboard's panels on the admin's start page."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from reporting.admin_dashboard import panels_context, parse_as_of

register = template.Library()


@register.inclusion_tag("reporting/dashboard_panels.html", takes_context=True)
def finance_dashboard(context: template.Context) -> dict[str, Any]:
    """The panels for the request's person and ``?as_of=`` (reporting.admin_dashboard)."""
    return panels_context(context["request"])


@register.simple_tag(takes_context=True)
def dashboard_as_of(context: template.Context) -> str:
    """The as-of field's value: the day shown (today when none or a bad one was asked for)."""
    as_of, _error = parse_as_of(context["request"].GET.get("as_of"), today=timezone.localdate())
    return as_of.isoformat()
