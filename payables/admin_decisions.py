"""Confirmation pages for the payables decisions taken in the admin: approving an order, a
bill, an expense report or a payment run, releasing a run's bank file and confirming it
paid. Each is one page (``core.admin_confirm.confirm_action``): what will be posted, or what
the action does when it posts nothing, then one button. Nothing happens on a single click.

Approvals carry the version of the document the page showed (as the approvals inbox does):
a document changed since the page was opened is refused, not decided on unseen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse

from core.admin_confirm import confirm_action

# The label of the action buttons on a document's page.
APPROVE = "Approve…"


def decision_form(
    version: str, *, comment_required: bool = False, comment_help: str = ""
) -> type[forms.Form]:
    """A comment kept with the decision and the version of the document being decided."""
    shown_version = version

    class DecisionForm(forms.Form):
        comment = forms.CharField(
            label="Comment",
            max_length=300,
            required=comment_required,
            help_text=comment_help or "Optional: kept with your approval.",
            widget=forms.Textarea(attrs={"rows": 2}),
        )
        version = forms.CharField(widget=forms.HiddenInput, initial=shown_version)

    return DecisionForm


def document_or_404(model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str) -> Any:
    obj = model_admin.get_object(request, unquote(object_id))
    if obj is None:
        raise Http404
    return obj


def change_url(obj: Any) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def approval_page(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    *,
    document: Any,
    label: str,
    version: str,
    approve: Callable[[str, str | None], Any],
    summary: Sequence[tuple[str, str]],
    posts: bool,
    comment_required: bool = False,
    comment_help: str = "",
    warning: str = "",
) -> HttpResponse:
    """The approval of one document: ``approve(comment, expected_version)`` runs its
    service; with ``posts`` the page previews the entry the last approval posts."""

    def perform(form: forms.Form | None) -> Any:
        data = form.cleaned_data if form is not None else {}
        return approve(data.get("comment", ""), data.get("version"))

    def outcome(result: Any) -> str:
        name = label[:1].upper() + label[1:]
        if result.status == "pending_approval":
            return f"{name}: your approval is recorded; it waits for the next approver."
        return f"{name}: {result.get_status_display().lower()}."

    return confirm_action(
        request,
        admin_site=model_admin.admin_site,
        opts=model_admin.model._meta,
        obj=document,
        title=f"Approve {label}",
        button="Approve",
        perform=perform,
        preview=(lambda form: approve("", None)) if posts else None,
        summary=summary,
        warning=warning
        or "An approval cannot be withdrawn. When it is the last one the document needs, "
        "the document is approved"
        + (" and posted to the ledger as shown below." if posts else "."),
        form_class=decision_form(
            version, comment_required=comment_required, comment_help=comment_help
        ),
        done_url=change_url(document),
        cancel_url=change_url(document),
        success=outcome,
    )
