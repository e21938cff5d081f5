"""What every workspace list and page shares, whatever its model: export of the filtered
list, search by exact amount, and history written for people.

``WorkspaceAdminMixin`` sits under the base admins of core/admin.py (ServiceModelAdmin,
HistoryAdmin), so each domain's admin gets it without repeating it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import admin
from django.db import models
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import formats, timezone
from djmoney.models.fields import MoneyField
from moneyed import Money
from simple_history.template_utils import HistoricalRecordContextHelper

from core.admin_export import WorkspaceExportMixin
from core.exceptions import DomainError
from core.money import minor_unit_exponent, money_text

# "1,631.25", "1631.25", "1 631,25"? no: one format, the one the workspace shows, with an
# optional currency code before or after ("EUR 1,631.25", "1,631.25 EUR").
_AMOUNT = re.compile(
    r"^\s*(?:[A-Za-z]{3}\s+)?(-?\d{1,3}(?:,\d{3})+|-?\d+)(\.\d+)?(?:\s+[A-Za-z]{3})?\s*$"
)


def parse_amount(term: str) -> Decimal | None:
    """The amount a search term names, or None when it is not one."""
    match = _AMOUNT.match(term)
    if match is None:
        return None
    try:
        return Decimal(match.group(1).replace(",", "") + (match.group(2) or ""))
    except InvalidOperation:  # pragma: no cover - the pattern admits only digits
        return None


def amount_fields(model: type[models.Model]) -> list[str]:
    """The model's money amounts (MoneyFields and decimal fields named like amounts)."""
    names = []
    for field in model._meta.concrete_fields:
        money = isinstance(field, MoneyField)
        named = isinstance(field, models.DecimalField) and re.search(
            r"amount|total|balance|due|paid|price|debit|credit", field.name
        )
        if money or named:
            names.append(field.name)
    return names


def _label(field: models.Field[Any, Any], value: Any) -> Any:
    if value is None or value == "" or getattr(value, "pk", True) is None:
        return "-"
    if isinstance(value, datetime):
        return formats.date_format(timezone.localtime(value), "DATETIME_FORMAT")
    if isinstance(value, date):
        return formats.date_format(value, "DATE_FORMAT")
    if field.choices:
        return dict(field.flatchoices).get(value, value)
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return value


class WorkspaceHistoryHelper(HistoricalRecordContextHelper):
    """History changes as people read them: choice labels instead of codes, amounts in
    their currency's minor units with separators, Yes/No, "-" for nothing."""

    def prepare_delta_change_value(self, change: Any, value: Any) -> Any:
        value = super().prepare_delta_change_value(change, value)
        field = self.model._meta.get_field(change.field)
        if isinstance(field, models.DecimalField) and isinstance(value, Decimal):
            currency = getattr(self.record, f"{change.field}_currency", None)
            currency = str(currency) if currency else ""
            if currency:
                try:
                    places = minor_unit_exponent(currency)
                except DomainError:
                    return f"{value} {currency}"
                return f"{value:,.{places}f} {currency}"
            return f"{value:,}"
        return _label(field, value)


class MineFilter(admin.SimpleListFilter):
    """The saved filter "mine": the rows whose ``mine_field`` (created by, assigned to...) is
    the person looking. Added by ``WorkspaceAdminMixin`` to any list that names the field."""

    title = "Mine"
    parameter_name = "mine"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", getattr(model_admin, "mine_label", "Mine"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(**{self.field: request.user.pk})
        return queryset

    def __init__(self, request: HttpRequest, params: Any, model: Any, model_admin: Any) -> None:
        self.field = f"{model_admin.mine_field}_id"
        super().__init__(request, params, model, model_admin)


class WorkspaceAdminMixin(WorkspaceExportMixin):
    """Export, search by exact amount, readable history, the "mine" filter."""

    # Settings an admin may give (read with getattr: ``adopt_admins`` puts this mixin before
    # the admin's own class, so defaults declared here would hide the admin's values):
    # - search_amount_fields: amount columns searched when the term is an amount (None: every
    #   amount of the model);
    # - search_amount_either_sign: signed amounts (bank lines) where "1,250.00" also finds
    #   -1,250.00;
    # - mine_field / mine_label: the user foreign key a row belongs to, for the "mine" filter.

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Sequence[Any]:
        # The database id is no one's business on a detail page: documents show their number.
        return [name for name in super().get_fields(request, obj) if name != "id"]

    def get_list_filter(self, request: HttpRequest) -> Sequence[Any]:
        filters = list(super().get_list_filter(request))
        if getattr(self, "mine_field", None) and MineFilter not in filters:
            filters.insert(0, MineFilter)
        return filters

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        amount = parse_amount(search_term) if search_term else None
        if amount is None:
            return results, may_have_duplicates
        names: tuple[str, ...] | None = getattr(self, "search_amount_fields", None)
        if names is None:
            names = tuple(amount_fields(self.model))
        if not names:
            return results, may_have_duplicates
        either_sign = getattr(self, "search_amount_either_sign", False)
        wanted = {amount, -amount} if either_sign else {amount}
        exact = Q()
        for name in names:
            for value in wanted:
                exact |= Q(**{name: value})
        if not self.get_search_fields(request):
            return queryset.filter(exact), may_have_duplicates
        return results | queryset.filter(exact), may_have_duplicates

    def get_historical_record_context_helper(
        self, request: HttpRequest, historical_record: Any
    ) -> HistoricalRecordContextHelper:
        return WorkspaceHistoryHelper(self.model, historical_record)


def readable_value(value: Any, field: Any, empty_value_display: str) -> str | None:
    """How the workspace shows a model field's value on detail pages and lists where no
    admin method formats it: Money as "1,631.25 EUR"; a decimal without its storage zeros
    ("1.5000" -> "1.50", an FX rate "1.1234567000" -> "1.1234567"), thousands grouped.
    None: the theme's own display applies."""
    if value is None or value == "" or getattr(field, "flatchoices", None):
        return None
    if isinstance(field, MoneyField) and isinstance(value, Money):
        return money_text(value)
    if isinstance(field, models.DecimalField) and isinstance(value, Decimal):
        exponent = value.normalize().as_tuple().exponent
        own = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        return f"{value:,.{min(max(own, 2), field.decimal_places)}f}"
    return None


def install_readable_values() -> None:
    """Route django-unfold's field display (detail pages, lists, sections) through
    ``readable_value`` first. unfold reads ``display_for_field`` from its own modules, so each
    module's name is replaced; called once from the admin's ``ready``."""
    import unfold.fields
    import unfold.sections
    import unfold.templatetags.unfold_list

    modules = (unfold.fields, unfold.sections, unfold.templatetags.unfold_list)
    theme = unfold.fields.display_for_field
    if getattr(theme, "workspace", False):
        return

    def display_for_field(value: Any, field: Any, empty_value_display: str) -> str:
        shown = readable_value(value, field, empty_value_display)
        return shown if shown is not None else theme(value, field, empty_value_display)

    display_for_field.workspace = True  # type: ignore[attr-defined]
    for module in modules:
        module.display_for_field = display_for_field
