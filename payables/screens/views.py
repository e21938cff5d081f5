"""Thin views of the approval screens: the form validates, a payables service writes, a
domain refusal is shown on the page with its reason (never a 500).

Every page needs a signed-in staff user whose session passed the second factor (the
admin's OTP login) and who may view some payables document; anyone else signed in gets 403.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from core.exceptions import DomainError
from payables.models import Approval
from payables.screens.documents import (
    SCREENS,
    DecisionRecord,
    DocumentScreen,
    StoredFile,
    person,
)
from payables.screens.forms import APPROVE, DecisionForm
from payables.screens.inbox import inbox_list
from payables.services.approvals import can_decide, roles_outstanding

View = Callable[..., HttpResponse]


def _views_payables(user: Any) -> bool:
    return user.is_superuser or any(
        perm.startswith("payables.view_") for perm in user.get_all_permissions()
    )


def approvals_access(view: View) -> View:
    """Signed in with a verified second factor, else to the admin's OTP login (and back);
    staff with a payables view permission, else 403."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated or not user.is_verified():  # type: ignore[union-attr]
            back = (
                request.get_full_path() if request.method == "GET" else reverse("approvals:inbox")
            )
            return redirect_to_login(back, reverse("admin:login"))
        if not (user.is_active and user.is_staff and _views_payables(user)):
            return render(request, "approvals/forbidden.html", status=403)
        return view(request, *args, **kwargs)

    return wrapped


def _screen(kind: str, user: Any) -> DocumentScreen:
    screen = SCREENS.get(kind)
    if screen is None:
        raise Http404("No such kind of document.")
    if not user.has_perm(screen.view_permission):
        raise PermissionDenied("Your role does not show this kind of document.")
    return screen


@require_GET
@approvals_access
def inbox(request: HttpRequest) -> HttpResponse:
    items = inbox_list(actor=request.user)
    return render(request, "approvals/inbox.html", {"items": items})


@dataclass(frozen=True)
class HistoryRow:
    at: datetime
    user: str
    action: str
    status: str
    changes: str


HISTORY_ACTIONS = {"+": "Created", "~": "Changed", "-": "Deleted"}


def _short(value: Any) -> str:
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, datetime):
        text = f"{timezone.localtime(value):%Y-%m-%d %H:%M}"
    elif isinstance(value, Decimal):
        text = f"{value.normalize():f}"
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _change(field: str, old: Any, new: Any) -> str:
    if isinstance(new, dict | list) or isinstance(old, dict | list):
        return f"{field} updated"
    return f"{field}: {_short(old)} \u2192 {_short(new)}"


def _history(doc: Any) -> list[HistoryRow]:
    """The document's simple_history rows, oldest first, with what each one changed."""
    records = list(doc.history.select_related("history_user").order_by("history_date", "pk"))
    rows = []
    previous = None
    for record in records:
        changes = ""
        if previous is not None:
            delta = record.diff_against(previous)
            changes = "; ".join(_change(c.field, c.old, c.new) for c in delta.changes)
        status = getattr(record, "get_status_display", lambda: "")()
        rows.append(
            HistoryRow(
                at=record.history_date,
                user=person(record.history_user),
                action=HISTORY_ACTIONS.get(record.history_type, record.history_type),
                status=status,
                changes=changes,
            )
        )
        previous = record
    return rows


def _decisions(screen: DocumentScreen, doc: Any) -> list[DecisionRecord]:
    approvals = Approval.objects.filter(kind=screen.kind, object_id=doc.pk).select_related(
        "user", "on_behalf_of"
    )
    records = [
        DecisionRecord(
            decision=a.get_decision_display(),
            user=person(a.user),
            on_behalf_of=person(a.on_behalf_of),
            role=a.role,
            decided_at=a.decided_at,
            comment=a.comment,
            voided_at=a.voided_at,
            void_reason=a.void_reason,
        )
        for a in approvals
    ]
    return sorted(records + screen.extra_decisions(doc), key=lambda r: r.decided_at)


def _why_not(screen: DocumentScreen, doc: Any, actor: Any) -> str:
    if not screen.is_pending(doc):
        return f"Nothing to decide: its state is \u201c{screen.status_display(doc)[1]}\u201d."
    if actor.pk in screen.maker_ids(doc):
        return "You requested it: someone else must decide on it."
    counted = Approval.objects.filter(kind=screen.kind, object_id=doc.pk, voided_at__isnull=True)
    if counted.filter(user=actor).exists() or counted.filter(on_behalf_of=actor).exists():
        return "You have already decided on it; the same person never counts twice."
    return "Your role cannot fill what it still needs."


def _detail_context(
    request: HttpRequest, screen: DocumentScreen, doc: Any, form: DecisionForm | None = None
) -> dict[str, Any]:
    actor = request.user
    required = screen.required(doc)
    outstanding = roles_outstanding(screen.kind, doc.pk, required) if screen.is_pending(doc) else []
    decidable = screen.is_pending(doc) and can_decide(
        kind=screen.kind,
        object_id=doc.pk,
        maker_ids=screen.maker_ids(doc),
        required=required,
        actor=actor,
    )
    if decidable and form is None:
        form = DecisionForm(
            match_exception=screen.match_exception(doc), initial={"version": screen.version(doc)}
        )
    status_value, status_label = screen.status_display(doc)
    return {
        "screen": screen,
        "doc": doc,
        "summary": screen.summary(doc),
        "status_value": status_value,
        "status_label": status_label,
        "facts": screen.facts(doc),
        "lines": screen.lines(doc),
        "files": [f for f in screen.files(doc) if actor.has_perm(f.permission)],
        "match_result": screen.match_result(doc),
        "match_note": screen.match_note(doc),
        "decisions": _decisions(screen, doc),
        "history": _history(doc),
        "required": required,
        "outstanding": outstanding,
        "decidable": decidable,
        "why_not": "" if decidable else _why_not(screen, doc, actor),
        "form": form if decidable or form is not None else None,
    }


@require_GET
@approvals_access
def document_detail(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    screen = _screen(kind, request.user)
    doc = screen.get(pk)
    return render(request, "approvals/detail.html", _detail_context(request, screen, doc))


@require_POST
@approvals_access
def document_decide(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """Approve or reject through the document's service; its refusal is shown with its
    reason and the HTTP status of the refusal (403, 409), and nothing is written."""
    screen = _screen(kind, request.user)
    doc = screen.get(pk)
    form = DecisionForm(request.POST, match_exception=screen.match_exception(doc))
    if not form.is_valid():
        context = _detail_context(request, screen, doc, form)
        return render(request, "approvals/detail.html", context, status=400)
    data = form.cleaned_data
    if data["version"] != screen.version(doc):
        messages.error(
            request,
            "It changed since you opened it: review the current version and decide again.",
        )
        return render(
            request, "approvals/detail.html", _detail_context(request, screen, doc), status=409
        )
    try:
        if data["decision"] == APPROVE:
            screen.approve(
                pk=doc.pk,
                actor=request.user,
                comment=data["comment"],
                accept_match_exception=bool(data.get("accept_match_exception")),
                version=data["version"],
            )
        else:
            screen.reject(
                pk=doc.pk, actor=request.user, comment=data["comment"], version=data["version"]
            )
    except DomainError as refusal:
        messages.error(request, refusal.message)
        doc = screen.get(pk)
        context = _detail_context(request, screen, doc, form)
        return render(request, "approvals/detail.html", context, status=refusal.status_code)
    number = screen.summary(doc).number
    verb = "approved" if data["decision"] == APPROVE else "rejected"
    messages.success(request, f"You {verb} {number}.")
    return redirect("approvals:detail", kind=screen.slug, pk=doc.pk)


@require_GET
@approvals_access
def document_file(request: HttpRequest, kind: str, pk: int, name: str) -> FileResponse:
    """A stored file of the document, to users holding the permission to view it."""
    screen = _screen(kind, request.user)
    doc = screen.get(pk)
    stored: StoredFile | None = next((f for f in screen.files(doc) if f.name == name), None)
    if stored is None or not request.user.has_perm(stored.permission):
        raise Http404("No such file.")
    try:
        handle = stored.file.open("rb")
    except FileNotFoundError:
        raise Http404("The stored file is missing.") from None
    return FileResponse(
        handle,
        as_attachment=True,
        filename=stored.filename,
        content_type=stored.content_type or "application/octet-stream",
    )
