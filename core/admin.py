"""Admin for the shared kernel (FX rates, task failures, users, roles and second-factor
devices) and the base classes every app's admin uses.

Admin pages are thin callers of services: ``save_model`` calls the service, and a
DomainError it raises comes back as an error on the form instead of a server error.

Users, role groups and OTP devices are managed by superusers only (others with the view
permission see them read-only); nobody changes their own flags, roles or permissions here; a
device's key and recovery codes are never shown (enrolment is ``manage.py mfa_enroll``,
which shows them once to the person enrolling); every change is logged by
``core.accounts.account_change_log`` besides the admin's own log entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, Permission, User
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import Http404, HttpRequest, HttpResponse
from djmoney.money import Money
from simple_history.admin import SimpleHistoryAdmin
from unfold.admin import ModelAdmin
from unfold.forms import AdminPasswordChangeForm
from unfold.forms import UserChangeForm as UnfoldUserChangeForm
from unfold.forms import UserCreationForm as UnfoldUserCreationForm

from core.accounts import account_change_log
from core.admin_confirm import amount_text
from core.admin_paginator import EstimatedCountPaginator
from core.exceptions import DomainError
from core.fx import fx_rate_create
from core.models import FxRate, TaskFailure
from core.otp import AuthenticatorDevice, RecoveryCodeDevice

_SERVICE_ERROR = "_backoffice_service_error"


def money_display(value: Money | None) -> str:
    """``1,234.50 USD``: rounded to the currency's minor unit, the code after the amount."""
    if value is None:
        return "-"
    return amount_text(value.amount, str(value.currency))


class ReadOnlyAdminMixin:
    """Listed and shown, never added, changed or deleted here: a POST to a change page is
    refused (403)."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ServiceModelAdmin(ModelAdmin):
    """An admin whose ``save_model`` calls a service.

    When the service refuses (DomainError), the transaction is rolled back and the form is
    shown again with the user's input and the refusal as a form error.
    """

    # Lists of a million rows show the planner's estimate ("about 1,000,000"), not COUNT(*).
    paginator = EstimatedCountPaginator
    show_full_result_count = False

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


class ReadOnlyHistoryMixin:
    """History visible, but never reverted or edited from the admin: a revert saves a past
    version over the record around the services, and history rows are append-only (SOX;
    ``core.history_guard``), so a past version's page is read-only and a POST to it is 403."""

    def revert_disabled(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return True

    def has_change_history_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def history_form_view(
        self,
        request: HttpRequest,
        object_id: str,
        version_id: str,
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied
        # A model without simple-history (a log of its own) has no past versions to show.
        options = self.model._meta  # type: ignore[attr-defined]
        if not hasattr(options, "simple_history_manager_attribute"):
            raise Http404
        return super().history_form_view(  # type: ignore[misc]
            request, object_id, version_id, extra_context
        )


class HistoryAdmin(ReadOnlyHistoryMixin, SimpleHistoryAdmin, ModelAdmin):
    """django-simple-history's admin in the workspace theme (its history pages come from
    ``unfold.contrib.simple_history``); past versions are shown, never reverted."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False


class AuditedAdmin(ReadOnlyHistoryMixin, ServiceModelAdmin, SimpleHistoryAdmin):
    """History visible, but never reverted from the admin: a revert would write around the
    services, so history pages are read-only."""


@admin.register(FxRate)
class FxRateAdmin(AuditedAdmin):
    """Roles: view for every staff role; add for finance_admin and controller. Rates are
    recorded by ``fx_rate_create`` (as the API records them) and never changed or deleted,
    because posted entries were converted with them: a correction is a new rate with its own
    date."""

    list_display = (
        "rate_date",
        "base_currency",
        "quote_currency",
        "rate_display",
        "source",
        "created_at",
    )
    list_filter = ("base_currency", "quote_currency", "source", "rate_date")
    search_fields = ("base_currency", "quote_currency")
    date_hierarchy = "rate_date"
    fields = ("base_currency", "quote_currency", "rate_date", "rate", "source", "created_at")

    # A recorded rate is shown, never edited (no change permission): only adding has a form.
    readonly_fields = ("created_at",)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    @admin.display(description="Rate", ordering="rate")
    def rate_display(self, rate: FxRate) -> str:
        """1 EUR = 1.084300 USD: six places, as treasury quotes them (stored with ten)."""
        return f"1 {rate.base_currency} = {rate.rate:,.6f} {rate.quote_currency}"

    def save_model(self, request: HttpRequest, obj: FxRate, form: Any, change: bool) -> None:
        saved, _created = fx_rate_create(
            actor=request.user,
            base_currency=obj.base_currency,
            quote_currency=obj.quote_currency,
            rate=obj.rate,
            rate_date=obj.rate_date,
            source=obj.source or "manual",
        )
        obj.pk = saved.pk
        obj.created_at = saved.created_at


@admin.register(TaskFailure)
class TaskFailureAdmin(ModelAdmin):
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


# --- Users, roles and second-factor devices -----------------------------------------------

_ACCOUNT_CHANGES = "_backoffice_account_changes"
# What nobody changes on their own account through the admin, superusers included.
SELF_LOCKED_FIELDS = ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")


def _loggable(value: Any) -> Any:
    """A form value as the change log keeps it: names for roles and permissions."""
    if isinstance(value, QuerySet | list | tuple | set):
        return sorted(_loggable(item) for item in value)
    if isinstance(value, Permission):
        return f"{value.content_type.app_label}.{value.codename}"
    if isinstance(value, Model):
        return str(value)
    return value


class AccountAdminMixin:
    """Superusers only add, change and delete; every addition, change and deletion is logged
    with who, what and when (values only for flags, roles and permissions)."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return bool(request.user.is_superuser) and super().has_add_permission(request, *args)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return bool(request.user.is_superuser) and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return bool(request.user.is_superuser) and super().has_delete_permission(request, obj)  # type: ignore[misc]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)  # type: ignore[misc]
        request.__dict__[_ACCOUNT_CHANGES] = (
            list(form.changed_data),
            {
                name: (_loggable(form.initial.get(name)), _loggable(form.cleaned_data.get(name)))
                for name in form.changed_data
            },
        )

    def _log(self, request: HttpRequest, action: str, obj: Model, message: Any) -> None:
        fields, changes = request.__dict__.pop(_ACCOUNT_CHANGES, (None, {}))
        if fields is None:
            fields = [
                name
                for part in (message if isinstance(message, list) else [])
                for name in part.get("changed", {}).get("fields", [])
            ]
        account_change_log(
            actor=request.user, action=action, target=obj, fields=fields, changes=changes
        )

    def log_addition(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        self._log(request, "add", obj, message)
        return super().log_addition(request, obj, message)  # type: ignore[misc]

    def log_change(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        self._log(request, "change", obj, message)
        return super().log_change(request, obj, message)  # type: ignore[misc]

    def log_deletions(self, request: HttpRequest, queryset: Iterable[Model]) -> Any:
        for obj in queryset:
            account_change_log(actor=request.user, action="delete", target=obj, fields=[])
        return super().log_deletions(request, queryset)  # type: ignore[misc]


admin.site.unregister(User)
admin.site.unregister(Group)
# django-otp's plugin devices kept keys and codes in plain text: retired (migration 0007 moved
# them to core.otp's devices, and their tables refuse rows), so no page of theirs is served.
admin.site.unregister(apps.get_model("otp_totp", "TOTPDevice"))
admin.site.unregister(apps.get_model("otp_static", "StaticDevice"))


@admin.register(User)
class BackofficeUserAdmin(AccountAdminMixin, UserAdmin, ModelAdmin):
    """Roles: add and change for superusers; view for finance_admin and auditor. Nobody
    changes their own active, staff or superuser flag, roles or permissions here (a second
    superuser does). Users are deactivated, never deleted: their admin log entries and the
    documents they signed point at them."""

    form = UnfoldUserChangeForm
    add_form = UnfoldUserCreationForm
    change_password_form = AdminPasswordChangeForm

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and obj.pk == request.user.pk:
            return (*readonly, *SELF_LOCKED_FIELDS)
        return readonly

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Group)
class BackofficeGroupAdmin(AccountAdminMixin, GroupAdmin, ModelAdmin):
    """Roles: add, change and delete for superusers; view for finance_admin and auditor.
    A role's permissions change with a logged entry naming each permission."""


class DeviceAdminMixin(AccountAdminMixin):
    """A second-factor device: who it belongs to, its name, state and throttling, never its
    key or codes. Added only by ``manage.py mfa_enroll``; never moved to another user."""

    list_display = ("user", "name", "created_at", "last_used_at", "confirmed")
    readonly_fields = ("user", "created_at", "last_used_at")
    fieldsets = (
        ("Identity", {"fields": ("user", "name", "confirmed")}),
        ("Timestamps", {"fields": ("created_at", "last_used_at")}),
        ("Throttling", {"fields": ("throttling_failure_timestamp", "throttling_failure_count")}),
    )

    def get_list_display(self, request: HttpRequest) -> Any:
        return self.list_display

    def get_fieldsets(self, request: HttpRequest, obj: Model | None = None) -> Any:
        return self.fieldsets

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False


@admin.register(AuthenticatorDevice)
class AuthenticatorDeviceAdmin(DeviceAdminMixin, ModelAdmin):
    """Roles: change and delete for superusers; view for finance_admin. The key has no
    field, no configuration page and no QR code here (it is stored encrypted)."""

    search_fields = ("user__username", "name")


@admin.register(RecoveryCodeDevice)
class RecoveryCodeDeviceAdmin(DeviceAdminMixin, ModelAdmin):
    """Roles: change and delete for superusers; view for finance_admin. The codes are stored
    only as hashes and never listed."""

    search_fields = ("user__username", "name")
