"""The access matrix (issue 15): every route of the URLconf, who may reach it, who may not.

Each route declares its access:
- an API view its ``required_permissions`` (method -> permissions, or PUBLIC), or no
  authentication at all where the caller proves itself otherwise (processor webhooks: their
  signature scheme);
- a screen its place in ``ROUTE_KINDS`` below: the workspace (admin site: a verified second
  factor and the model's permissions), the approval screens (the same, and a payables view
  permission), the customer portal (a portal session), the hosted invoice page (a signed
  link), or public (health).
A route in none of them fails the first test, so a new route must say who may use it.

Then every API operation is called by every role (an integration through its token), an
anonymous caller, a person signed in without the second factor and an integration token
outside the operation's scope: a role is refused exactly when its group lacks a declared
permission. The workspace's lists are opened by every role the same way, and every screen
refuses anonymous and unverified callers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from core.admin import AccountAdminMixin
from core.api.permissions import PUBLIC
from core.api.scopes import API_AREAS, view_area
from core.roles import Role
from tests.conftest import token_client, token_for, verified_client
from tests.core.test_api_fuzz import seed_world

pytestmark = pytest.mark.django_db

# Non-API routes by prefix: who may use them. Each kind is checked below.
ROUTE_KINDS = {
    "admin/": "workspace",
    "approvals/": "approvals",
    "portal/": "portal",
    "pay/": "signed_link",
    "healthz": "public",
}
# The portal's own entrances: the sign-in form and the emailed link.
PORTAL_ENTRANCES = {"portal/", "portal/enter/<str:token>"}

PATH_VALUES = {"int": "999999", "str": "zz-unknown", "slug": "zz-unknown", "path": "999999"}
CONVERTER = re.compile(r"<(?:(?P<kind>\w+):)?(?P<name>\w+)>")


def routes() -> Iterator[tuple[str, Any]]:
    def walk(patterns: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern), p.callback

    yield from walk(get_resolver().url_patterns)


def concrete(route: str) -> str:
    """A URL for the route with unknown ids: permission checks come before the lookup."""
    path = CONVERTER.sub(lambda m: PATH_VALUES.get(m.group("kind") or "str", "zz"), route)
    return "/" + path.lstrip("^").rstrip("$")


def api_operations() -> list[tuple[str, str, Any, list[str]]]:
    """(method, url, view class, permissions) of every declared API operation."""
    found = []
    for route, callback in routes():
        view_class = getattr(callback, "view_class", None)
        if not route.startswith("api/") or view_class is None:
            continue
        declared = getattr(view_class, "required_permissions", None)
        if declared == PUBLIC or getattr(view_class, "authentication_classes", None) == []:
            continue
        for method, perms in declared.items():
            found.append((method, concrete(route), view_class, list(perms)))
    return sorted(found, key=lambda op: (op[1], op[0]))


def role_permissions() -> dict[str, set[str]]:
    return {
        role.value: {
            f"{app}.{codename}"
            for app, codename in Group.objects.get(name=role.value).permissions.values_list(
                "content_type__app_label", "codename"
            )
        }
        for role in Role
    }


def call(client: APIClient, method: str, url: str) -> int:
    if method == "GET":
        return client.get(url).status_code
    return client.generic(method, url, "{}", content_type="application/json").status_code


def test_every_route_declares_who_may_use_it() -> None:
    undeclared = []
    for route, callback in routes():
        view_class = getattr(callback, "view_class", None)
        if route.startswith("api/"):
            declared = getattr(view_class, "required_permissions", None)
            signed = getattr(view_class, "authentication_classes", None) == []
            if not (declared == PUBLIC or isinstance(declared, dict) or signed):
                undeclared.append(route)
        elif not any(route.startswith(prefix) for prefix in ROUTE_KINDS):
            undeclared.append(route)
    assert undeclared == []


@pytest.fixture
def principals(make_user) -> dict[str, APIClient]:
    clients: dict[str, APIClient] = {
        role.value: verified_client(make_user(role.value)) for role in Role if role != "integration"
    }
    clients[Role.INTEGRATION.value] = token_client(
        token_for(make_user(Role.INTEGRATION, mfa=False))
    )
    unverified = APIClient()
    unverified.force_login(make_user(Role.FINANCE_ADMIN))
    clients["unverified"] = unverified
    clients["anonymous"] = APIClient()
    return clients


def test_every_api_operation_admits_exactly_the_roles_that_hold_its_permissions(
    principals, make_user
) -> None:
    grants = role_permissions()
    integration = make_user(Role.INTEGRATION, mfa=False, username="scoped-elsewhere")
    scoped = {
        area: token_client(token_for(integration, (f"{other}:write",)))
        for area in API_AREAS
        for other in [next(a for a in API_AREAS if a != area)]
    }
    wrong: list[tuple[str, str, str, int]] = []
    checked = 0
    for method, url, view_class, perms in api_operations():
        admitted_once = False
        for who, client in principals.items():
            allowed = who in grants and set(perms) <= grants[who]
            if allowed and admitted_once:
                continue  # one admitted caller per operation is enough to show it is open
            status = call(client, method, url)
            checked += 1
            if allowed:
                admitted_once = True
                if status in (401, 403):
                    wrong.append((who, method, url, status))
            elif status not in (401, 403):
                wrong.append((who, method, url, status))
        # a token outside the operation's scope is refused, whatever its role allows
        status = call(scoped[view_area(view_class())], method, url)
        checked += 1
        if status != 403:
            wrong.append(("token outside the scope", method, url, status))
    assert wrong == []
    assert checked > 1000


def _changelists() -> list[tuple[str, str, str]]:
    return sorted(
        (
            model._meta.app_label,
            model._meta.model_name,
            reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"),
        )
        for model in admin.site._registry
    )


def test_every_workspace_list_admits_exactly_the_roles_that_may_view_it(principals) -> None:
    grants = role_permissions()
    wrong = []
    for app, model, url in _changelists():
        for role in Role:
            if role == Role.INTEGRATION:
                continue  # no staff sign-in: refused with the anonymous below
            perms = grants[role.value]
            allowed = f"{app}.view_{model}" in perms or f"{app}.change_{model}" in perms
            status = principals[role.value].get(url).status_code
            if (status == 200) != allowed or status not in (200, 403):
                wrong.append((role.value, url, status))
    assert wrong == []


@pytest.mark.parametrize("who", ["anonymous", "unverified", Role.INTEGRATION.value])
def test_every_screen_refuses_callers_without_a_verified_staff_session(principals, who) -> None:
    client = principals[who]
    wrong = []
    for route, _callback in routes():
        kind = next((k for p, k in ROUTE_KINDS.items() if route.startswith(p)), None)
        if kind is None or kind == "public" or route in PORTAL_ENTRANCES:
            continue
        url = concrete(route)
        status = client.get(url)
        if kind in ("workspace", "approvals"):
            if route in ("admin/login/", "admin/logout/"):
                continue
            # to the sign-in with the second factor, or not found for an unknown id
            ok = status.status_code == 302 and "/admin/login/" in status["Location"]
            ok = ok or status.status_code in (403, 404, 405)
        elif kind == "portal":
            # a portal page needs a portal session: staff sessions and tokens do not count
            ok = status.status_code in (302, 401, 403, 404, 405) and (
                status.status_code != 302 or "/portal/" in status["Location"]
            )
        else:  # signed link: an unknown token is not found
            ok = status.status_code in (404, 405)
        if not ok:
            wrong.append((route, status.status_code))
    assert wrong == []


def test_staff_without_a_payables_permission_are_refused_the_approval_screens(
    make_user,
) -> None:
    # an AR clerk's role holds no payables view permission
    clerk = make_user(Role.AR_CLERK)
    assert not any(p.startswith("payables.view_") for p in clerk.get_all_permissions())
    assert verified_client(clerk).get(reverse("approvals:inbox")).status_code == 403


# Pages whose permission is not the model's add/delete one, as their admin declares it.
PAGE_PERMISSIONS = {
    # the add page records a payment through payment_record (billing.admin_payments)
    ("billing", "payment", "add"): {"billing.record_payment"},
}


def _superuser_request(user: Any) -> Any:
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def test_every_workspace_page_of_a_model_admits_exactly_the_roles_that_hold_its_permission(
    principals,
) -> None:
    """Beyond the lists: each model's add, change, delete and history pages, per role.

    Allowed exactly when the role's group holds the page's permission and the page exists at
    all (a read-only admin offers no add or delete page, a superuser included). Users, groups
    and second-factor devices are managed by superusers only (``AccountAdminMixin``), whatever
    the group holds. Change and delete pages are asked for an unknown id: the admin checks the
    permission before it looks the object up (refused: 403; allowed: back to the list). A
    history page needs a stored object (an unknown id's redirects before any check): asked
    where one exists."""
    grants = role_permissions()
    superuser = _superuser_request(User.objects.create_superuser("matrix-root", "r@x.example"))
    wrong = []
    checked = 0
    for model, model_admin in sorted(
        admin.site._registry.items(), key=lambda item: item[0]._meta.label
    ):
        app, name = model._meta.app_label, model._meta.model_name
        stored = model._default_manager.order_by("pk").first()
        superusers_only = isinstance(model_admin, AccountAdminMixin)
        viewing = {f"{app}.view_{name}", f"{app}.change_{name}"}
        pages = [
            ("add", reverse(f"admin:{app}_{name}_add"), model_admin.has_add_permission(superuser)),
            ("change", reverse(f"admin:{app}_{name}_change", args=["999999"]), True),
            (
                "delete",
                reverse(f"admin:{app}_{name}_delete", args=["999999"]),
                model_admin.has_delete_permission(superuser),
            ),
        ]
        if stored is not None:
            url = reverse(f"admin:{app}_{name}_history", args=[stored.pk])
            pages.append(("history", url, True))
        for page, url, exists in pages:
            needs = PAGE_PERMISSIONS.get((app, name, page)) or (
                viewing if page in ("change", "history") else {f"{app}.{page}_{name}"}
            )
            for role in Role:
                if role == Role.INTEGRATION:
                    continue  # no staff sign-in: refused with the anonymous callers
                held = bool(needs & grants[role.value])
                allowed = exists and held and not (superusers_only and page in ("add", "delete"))
                status = principals[role.value].get(url).status_code
                checked += 1
                opened = status == (200 if page in ("add", "history") else 302)
                if opened != allowed or status not in (200, 302, 403):
                    wrong.append((role.value, page, url, status, allowed))
    assert wrong == [], wrong
    assert checked > 1000


STANDARD_PAGES = ("changelist", "add", "change", "delete", "history", "autocomplete")
MODEL_ROUTE = re.compile(r"^admin/(?P<app>\w+)/(?P<model>\w+)/")


def _model_action_routes() -> list[tuple[str, str, str]]:
    """(app, model, route) of each page a model's admin adds to the standard ones: its action,
    confirmation, upload and report pages."""
    registered = {(m._meta.app_label, m._meta.model_name) for m in admin.site._registry}
    found = []
    for route, callback in routes():
        match = MODEL_ROUTE.match(route)
        name = getattr(callback, "__name__", "")
        if match is None or (match["app"], match["model"]) not in registered:
            continue
        base = f"admin/{match['app']}/{match['model']}/"
        if route in (base, base + "add/", base + "<path:object_id>/"):
            continue  # the list, the add page, the old address of the change page: above
        if (
            re.search(r"<path:object_id>/(change|delete|history)/$", route)
            or name in STANDARD_PAGES
        ):
            continue
        found.append((match["app"], match["model"], route))
    return sorted(found)


def test_no_role_reaches_a_model_action_page_without_the_models_permissions(
    principals, make_user
) -> None:
    """Each model's own extra pages (approve, release, void, upload, export, a history
    record...), asked by every role about a stored object where the seeded world has one: a
    role that may neither view nor change the model is refused (403; 405 where the page only
    takes a POST; 404 only where no object of the model is stored), and the others never meet
    a server error. What each page needs beyond that (approve_bill, release_paymentrun...) is
    its service's check, proved by the API matrix above and each service's tests."""
    seed_world(make_user)
    grants = role_permissions()
    pages = _model_action_routes()
    wrong = []
    for app, model, route in pages:
        model_class = apps.get_model(app, model)
        stored = model_class._default_manager.order_by("pk").first()
        pk = str(stored.pk) if stored is not None else "999999"
        # a past version's page: the stored object's first history row
        history = getattr(model_class, "history", None)
        version = (
            history.filter(id=stored.pk).order_by("pk").first() if stored and history else None
        )
        url = concrete(route.replace("<path:object_id>", pk).replace("^([^/]+)", pk))
        url = url.replace("([^/]+)", str(version.pk) if version is not None else "999999")
        found = stored is not None and ("history/" not in route or version is not None)
        refusals = (403, 405) if found else (403, 404, 405)
        for role in Role:
            if role == Role.INTEGRATION:
                continue
            may_see = bool({f"{app}.view_{model}", f"{app}.change_{model}"} & grants[role.value])
            status = principals[role.value].get(url).status_code
            if status >= 500 or (not may_see and status not in refusals):
                wrong.append((role.value, url, status))
    assert len(pages) > 60
    assert wrong == [], wrong
