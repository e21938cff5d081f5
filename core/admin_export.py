"""Export of any filtered change list to CSV and XLSX (django-import-export, export only).

Every workspace list gets an "Export" button (``WorkspaceExportMixin``) that exports what
the list currently shows after its search and filters, as the model's fields with their
labels as headings: amounts as numbers with their currency in the next column, choices as
their labels, related objects by name. Who may export: whoever may view the list and holds
``core.export_lists`` (granted to the finance roles, not to approvers or integrations).

Nothing secret leaves this way: encrypted fields, tokens, keys, hashes and bank account
numbers are never exported. A text cell that a spreadsheet would run as a formula (starting
with =, +, -, @, a tab or a carriage return) is written with a leading apostrophe, so a
customer named ``=HYPERLINK(...)`` stays text (OWASP "CSV injection").
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import models
from django.http import HttpRequest
from django.utils import timezone
from django.utils.text import capfirst
from djmoney.money import Money
from import_export.admin import ExportMixin
from import_export.fields import Field
from import_export.formats.base_formats import CSV, XLSX
from import_export.resources import ModelResource
from unfold.contrib.import_export.forms import ExportForm

from core.spreadsheet import neutralise

EXPORT_PERMISSION = "core.export_lists"
_SENSITIVE = re.compile(
    r"(secret|token|password|passcode|key|hash|digest|signature|account_number|iban|"
    r"routing|bank_details|card|cvc|seed)",
    re.IGNORECASE,
)


def _exported(field: models.Field[Any, Any]) -> bool:
    """Not secret, and a value a spreadsheet can hold (not a JSON document or a file)."""
    if "Encrypted" in type(field).__name__ or _SENSITIVE.search(field.name):
        return False
    return not isinstance(field, models.JSONField | models.FileField | models.BinaryField)


class WorkspaceResource(ModelResource):
    """Exports values for people: labels for choices, names for related objects, amounts as
    numbers, text neutralised."""

    def export_field(self, field: Field, instance: models.Model, **kwargs: Any) -> Any:
        name = field.attribute or ""
        model_field = instance._meta.get_field(name) if name else None
        value = field.get_value(instance)
        choices = getattr(model_field, "choices", None)
        if choices and value not in (None, ""):
            value = getattr(instance, f"get_{name}_display")()
        if value is None:
            return ""
        if isinstance(value, Money):
            return value.amount
        if isinstance(value, bool):
            return "Yes" if value else "No"
        if isinstance(value, models.Model):
            value = str(value)
        if isinstance(value, datetime):
            # Spreadsheets hold no time zone: the workspace's local time, as shown on screen.
            return (
                timezone.localtime(value).replace(tzinfo=None)
                if timezone.is_aware(value)
                else value
            )
        if isinstance(value, Decimal | int | float | date):
            return value
        return neutralise(str(value))


def export_resource_for(model: type[models.Model]) -> type[WorkspaceResource]:
    """A resource of ``model``'s exportable fields, headed by their labels."""
    fields: dict[str, Any] = {}
    for model_field in model._meta.concrete_fields:
        if not _exported(model_field):
            continue
        label = capfirst(str(model_field.verbose_name))
        fields[model_field.name] = Field(attribute=model_field.name, column_name=label)
    meta = type("Meta", (), {"model": model, "fields": tuple(fields)})
    return type(f"{model.__name__}ExportResource", (WorkspaceResource,), {**fields, "Meta": meta})


class WorkspaceExportMixin(ExportMixin):
    """An "Export" button on the change list: CSV or XLSX of the filtered list."""

    export_form_class = ExportForm
    export_formats = (CSV, XLSX)

    def get_export_resource_classes(self, request: HttpRequest) -> list[type[ModelResource]]:
        return [export_resource_for(self.model)]

    def has_export_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(EXPORT_PERMISSION) and self.has_view_permission(request))
