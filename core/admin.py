"""Admin for the shared kernel (FX rates, task failures) and the base classes every app's
admin uses.

Admin pages are thin callers of services: ``save_model`` calls the service, and a
DomainError it raises comes back as an error on the form instead of a server error.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse
from djmoney.money import Money
from simple_history.admin import SimpleHistoryAdmin

from core.exceptions import DomainError
from core.fx import fx_rate_set
from core.models import FxRate, TaskFailure
from core.money import minor_unit_exponent, round_money

_SERVICE_ERROR = "_backoffice_service_error"


def money_display(value: Money | None) -> str:
    """``1,234.50 USD``: rounded to the currency's minor unit, the code after the amount."""
    if value is None:
        return "-"
    currency = str(value.currency)
    try:
        places = minor_unit_exponent(currency)
    except DomainError:
        return f"{value.amount} {currency}"
    return f"{round_money(value.amount, currency):,.{places}f} {currency}"


class ReadOnlyAdminMixin:
    """Listed and shown, never added, changed or deleted here: a POST to a change page is
    refused (403)."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ServiceModelAdmin(admin.ModelAdmin):
    """An admin whose ``save_model`` calls a service.

    When the service refuses (DomainError), the transaction is rolled back and the form is
    shown again with the user's input and the refusal as a form error.
    """

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:
            if request.method != "POST":
                raise
            request.__dict__[_SERVICE_ERROR] = exc
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(
        self, request: HttpRequest, obj: Model | None = None, change: bool = False, **kwargs: Any
    ) -> type[ModelForm]:
        form: type[ModelForm] = super().get_form(request, obj, change, **kwargs)
        error: DomainError | None = request.__dict__.get(_SERVICE_ERROR)
        if error is None:
            return form
        refusal: DomainError = error

        class RefusedForm(form):  # type: ignore[valid-type,misc]
            def clean(self) -> dict[str, Any]:
                cleaned: dict[str, Any] = super().clean()
                # Beside the field the service names, when the form has it.
                field = refusal.details.get("field")
                self.add_error(field if field in self.fields else None, refusal.message)
                return cleaned

        return RefusedForm


class AuditedAdmin(ServiceModelAdmin, SimpleHistoryAdmin):
    """History visible, but never reverted from the admin: a revert would write around the
    services, so history pages are read-only."""

    def has_change_history_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def history_form_view(
        self,
        request: HttpRequest,
        object_id: str,
        version_id: str,
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if request.method == "POST":
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)


@admin.register(FxRate)
class FxRateAdmin(AuditedAdmin):
    """Roles: view for finance_admin, controller, auditor, ar/ap clerks; add/change for
    finance_admin and controller. Rates are written by ``fx_rate_set``; never deleted, because
    posted entries were converted with them."""

    list_display = ("rate_date", "base_currency", "quote_currency", "rate", "source", "created_at")
    list_filter = ("base_currency", "quote_currency", "source", "rate_date")
    search_fields = ("base_currency", "quote_currency")
    date_hierarchy = "rate_date"
    fields = ("base_currency", "quote_currency", "rate_date", "rate", "source", "created_at")

    def get_readonly_fields(
        self, request: HttpRequest, obj: Model | None = None
    ) -> tuple[str, ...]:
        if obj is None:
            return ("created_at",)
        # The pair and the day identify the rate: a different one is a new rate.
        return ("base_currency", "quote_currency", "rate_date", "created_at")

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: FxRate, form: Any, change: bool) -> None:
        saved = fx_rate_set(
            base=obj.base_currency,
            quote=obj.quote_currency,
            rate=obj.rate,
            rate_date=obj.rate_date,
            source=obj.source or "manual",
        )
        obj.pk = saved.pk
        obj.created_at = saved.created_at


@admin.register(TaskFailure)
class TaskFailureAdmin(admin.ModelAdmin):
    """Roles: finance_admin and auditor see background tasks that failed; read-only (the
    workers write these rows)."""

    list_display = (
        "last_failed_at",
        "task_name",
        "status",
        "attempts",
        "exception_class",
        "task_id",
    )
    list_filter = ("status", "task_name")
    search_fields = ("task_name", "task_id", "exception_class")
    date_hierarchy = "last_failed_at"
    readonly_fields = (
        "task_name",
        "task_id",
        "status",
        "attempts",
        "first_failed_at",
        "last_failed_at",
        "exception_class",
        "exception_message",
        "arguments",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
