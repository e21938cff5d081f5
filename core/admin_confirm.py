"""Confirmation pages for admin actions that post to the ledger or cannot be undone.

``confirm_action`` serves one page for one action: on GET it shows what the action will do
(the journal entries it would post, account by account, found by running the service inside
a transaction that is then rolled back), and only a POST from that page's button performs it.
A refusal (DomainError) is shown on the page in the service's own words, never as a 403/500.

The preview runs the very service the button runs, so what is shown is what will be posted;
nothing of the preview survives (document numbers, rows and scheduled jobs roll back with
it: jobs are queued on commit). Services that call out to a processor are not previewed:
pass ``preview=None`` and a ``summary`` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse

from core.admin_once import FIELD as ONCE_FIELD
from core.admin_once import claim_once, once_token
from core.exceptions import DomainError
from core.ledger.models import JournalEntry, JournalLine
from core.money import amount_text


@dataclass(frozen=True)
class PreviewLine:
    account: str
    debit: str
    credit: str
    memo: str


@dataclass(frozen=True)
class PreviewEntry:
    entry_date: Any
    description: str
    lines: tuple[PreviewLine, ...]


@dataclass
class Preview:
    entries: list[PreviewEntry] = field(default_factory=list)
    error: str = ""


def workspace_widgets(form: forms.BaseForm) -> forms.BaseForm:
    """Give a plain form's widgets the workspace's input styles (unfold's classes), for the
    forms of custom admin pages. Returns the form."""
    from unfold.widgets import (
        BASE_INPUT_CLASSES,
        CHECKBOX_CLASSES,
        SELECT_CLASSES,
        TEXTAREA_CLASSES,
    )

    for bound in form.visible_fields():
        widget = bound.field.widget
        if isinstance(widget, forms.CheckboxInput | forms.CheckboxSelectMultiple):
            classes = CHECKBOX_CLASSES
        elif isinstance(widget, forms.Select):
            classes = SELECT_CLASSES
        elif isinstance(widget, forms.Textarea):
            classes = TEXTAREA_CLASSES
        else:
            classes = [*BASE_INPUT_CLASSES, "max-w-2xl"]
        existing = widget.attrs.get("class", "")
        widget.attrs["class"] = " ".join([existing, *classes]).strip()
    return form


class _RollBack(Exception):
    """Ends a preview's transaction; never escapes this module."""


def _line(line: JournalLine) -> PreviewLine:
    return PreviewLine(
        account=f"{line.account.code} {line.account.name}",
        debit=amount_text(line.debit, line.currency) if line.debit else "",
        credit=amount_text(line.credit, line.currency) if line.credit else "",
        memo=line.memo,
    )


def posting_preview(run: Callable[[], Any]) -> Preview:
    """The journal entries ``run`` posts, computed and rolled back."""
    preview = Preview()
    last = JournalEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    try:
        with transaction.atomic():
            run()
            entries = (
                JournalEntry.objects.filter(pk__gt=last)
                .prefetch_related("lines__account")
                .order_by("pk")
            )
            preview.entries = [
                PreviewEntry(
                    entry_date=entry.entry_date,
                    description=entry.description,
                    lines=tuple(
                        _line(line) for line in sorted(entry.lines.all(), key=lambda x: x.pk)
                    ),
                )
                for entry in entries
            ]
            raise _RollBack
    except _RollBack:
        pass
    except DomainError as exc:
        preview.error = exc.message
    return preview


def confirm_action(
    request: HttpRequest,
    *,
    admin_site: Any,
    opts: Any,
    obj: Any,
    title: str,
    button: str,
    perform: Callable[[forms.Form | None], Any],
    done_url: str,
    cancel_url: str,
    success: str | Callable[[Any], str],
    preview: Callable[[forms.Form | None], Any] | None = None,
    summary: Sequence[tuple[str, str]] = (),
    warning: str = "",
    form_class: type[forms.Form] | None = None,
    danger: bool = False,
) -> HttpResponse:
    """Serve the confirmation page of one action and perform it on its POST.

    ``perform(form)`` runs the service (``form`` is the bound, valid ``form_class`` or None)
    and returns what ``success`` (a message, or a function of the result) describes;
    ``preview(form)`` runs the same service for the postings preview (None: no preview);
    it gets the form only once it is bound and valid, None before.
    """
    form = form_class(request.POST or None) if form_class is not None else None
    if form is not None:
        workspace_widgets(form)
    error = ""
    confirmed = request.method == "POST" and "confirm" in request.POST
    if confirmed and (form is None or form.is_valid()):
        try:
            with transaction.atomic():
                claim_once(request)  # a second sending of this page does nothing
                result = perform(form)
        except DomainError as exc:
            error = exc.message
        else:
            text = success(result) if callable(success) else success
            messages.success(request, text)
            return HttpResponseRedirect(done_url)
    shown = Preview()
    if preview is not None:
        valid = form if form is not None and form.is_bound and form.is_valid() else None
        shown = posting_preview(lambda: preview(valid))
    context = {
        **admin_site.each_context(request),
        "opts": opts,
        "original": obj,
        "object": obj,
        "title": title,
        "button": button,
        "form": form,
        "preview": shown,
        "has_preview": preview is not None,
        "summary": summary,
        "warning": warning,
        "error": error or shown.error,
        "cancel_url": cancel_url,
        "danger": danger,
        "once": once_token(),
        "once_field": ONCE_FIELD,
    }
    return TemplateResponse(request, "admin/confirm_action.html", context)
