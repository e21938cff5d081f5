"""Users, roles and second-factor devices in the admin (issue 15, hole 2): only superusers
manage them, nobody raises their own rights, device secrets are never shown, and every
change is logged with who, what and when, never the secret."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, User
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from core.accounts import mfa_enroll
from core.otp import AuthenticatorDevice, RecoveryCode, RecoveryCodeDevice
from core.roles import Role
from tests.conftest import verified_client

pytestmark = pytest.mark.django_db


def _superuser(username: str = "root") -> User:
    user = User.objects.create_superuser(username, f"{username}@example.com", "x" * 16)
    AuthenticatorDevice.objects.create(user=user, name="phone", confirmed=True)
    return user


def _user_form(user: User, **overrides: object) -> dict[str, object]:
    """The user change form as the admin page posts it, with ``overrides``."""
    form: dict[str, object] = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "is_staff": "on",
        "groups": [str(pk) for pk in user.groups.values_list("pk", flat=True)],
        "user_permissions": [],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": timezone.localtime(user.date_joined).strftime("%Y-%m-%d"),
        "date_joined_1": timezone.localtime(user.date_joined).strftime("%H:%M:%S"),
        "initial-date_joined_0": timezone.localtime(user.date_joined).strftime("%Y-%m-%d"),
        "initial-date_joined_1": timezone.localtime(user.date_joined).strftime("%H:%M:%S"),
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


def _change_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [
        json.loads(r.getMessage().removeprefix("account_change "))
        for r in caplog.records
        if r.name == "core.accounts"
    ]


# --- Nobody but a superuser raises rights ---------------------------------------------------


def test_finance_admin_cannot_make_itself_superuser(make_user: Callable[..., User]) -> None:
    # given a finance admin signed in with a verified second factor
    me = make_user(Role.FINANCE_ADMIN, username="fiona")
    client = verified_client(me)
    url = reverse("admin:auth_user_change", args=[me.pk])

    # when they post their own user form with the superuser flag and every role
    response = client.post(
        url,
        _user_form(
            me,
            is_superuser="on",
            groups=[str(pk) for pk in Group.objects.values_list("pk", flat=True)],
        ),
    )

    # then it is refused and nothing changed
    assert response.status_code == 403
    me.refresh_from_db()
    assert (me.is_superuser, list(me.groups.values_list("name", flat=True))) == (
        False,
        [Role.FINANCE_ADMIN],
    )
    assert not LogEntry.objects.exists()


@pytest.mark.parametrize(
    ("url_name", "method"),
    [
        ("admin:auth_user_add", "post"),
        ("admin:auth_group_add", "post"),
        ("admin:auth_group_change", "post"),
        ("admin:auth_group_delete", "post"),
        ("admin:auth_user_password_change", "post"),
        ("admin:core_authenticatordevice_change", "post"),
        ("admin:core_authenticatordevice_delete", "post"),
        ("admin:core_recoverycodedevice_change", "post"),
    ],
)
def test_only_superusers_manage_users_roles_and_devices(
    url_name: str, method: str, make_user: Callable[..., User]
) -> None:
    # given a finance admin and another user's objects
    client = verified_client(make_user(Role.FINANCE_ADMIN))
    other = make_user(Role.APPROVER)
    static = RecoveryCodeDevice.objects.create(user=other, name="codes", confirmed=True)
    args = {
        "admin:auth_group_change": [Group.objects.get(name=Role.APPROVER).pk],
        "admin:auth_group_delete": [Group.objects.get(name=Role.APPROVER).pk],
        "admin:auth_user_password_change": [other.pk],
        "admin:core_authenticatordevice_change": [AuthenticatorDevice.objects.get(user=other).pk],
        "admin:core_authenticatordevice_delete": [AuthenticatorDevice.objects.get(user=other).pk],
        "admin:core_recoverycodedevice_change": [static.pk],
    }.get(url_name, [])

    # when they post to the page
    response = getattr(client, method)(
        reverse(url_name, args=args), {"name": "renamed", "post": "yes"}
    )

    # then it is refused and nothing changed
    assert response.status_code == 403
    assert Group.objects.filter(name=Role.APPROVER).exists()
    assert AuthenticatorDevice.objects.get(user=other).name == "phone"
    assert RecoveryCodeDevice.objects.get(pk=static.pk).name == "codes"
    assert not LogEntry.objects.exists()


def test_superuser_cannot_change_their_own_flags_or_roles(
    make_user: Callable[..., User],
) -> None:
    # given a superuser in the admin
    root = _superuser()
    client = verified_client(root)

    # when they post their own form dropping the staff flag and adding a role
    response = client.post(
        reverse("admin:auth_user_change", args=[root.pk]),
        _user_form(
            root,
            first_name="Ruth",
            is_staff=None,
            groups=[str(Group.objects.get(name=Role.CONTROLLER).pk)],
        ),
    )

    # then only the name changed: their rights need a second superuser
    assert response.status_code == 302
    root.refresh_from_db()
    assert (root.first_name, root.is_staff, root.is_superuser, root.groups.count()) == (
        "Ruth",
        True,
        True,
        0,
    )


def test_superuser_grants_a_role_to_another_user_and_it_is_logged(
    make_user: Callable[..., User], caplog: pytest.LogCaptureFixture
) -> None:
    # given a superuser and an approver
    root = _superuser()
    approver = make_user(Role.APPROVER, username="amy")
    client = verified_client(root)
    controller = Group.objects.get(name=Role.CONTROLLER)

    # when the superuser makes the approver a controller too
    with caplog.at_level(logging.INFO, logger="core.accounts"):
        response = client.post(
            reverse("admin:auth_user_change", args=[approver.pk]),
            _user_form(approver, groups=[*_user_form(approver)["groups"], str(controller.pk)]),
        )

    # then the role is held, with an admin log entry and a change line naming who and what
    assert response.status_code == 302
    assert sorted(approver.groups.values_list("name", flat=True)) == ["approver", "controller"]
    [line] = _change_lines(caplog)
    assert {k: v for k, v in line.items() if k != "at"} == {
        "event": "account_change",
        "actor": "root",
        "actor_id": root.pk,
        "action": "change",
        "model": "auth.user",
        "object_id": approver.pk,
        "object": "amy",
        "fields": ["groups"],
        "changes": {"groups": [["approver"], ["approver", "controller"]]},
    }
    entry = LogEntry.objects.get()
    assert (entry.user, entry.object_id) == (root, str(approver.pk))


# --- Device secrets are never shown ---------------------------------------------------------


def test_finance_admin_cannot_read_another_users_totp_seed(
    make_user: Callable[..., User],
) -> None:
    # given another user's enrolled authenticator and recovery codes
    other = make_user(Role.CONTROLLER, mfa=False)
    totp, codes = mfa_enroll(user=other)
    static = RecoveryCodeDevice.objects.get(user=other)
    client = verified_client(make_user(Role.FINANCE_ADMIN))

    # when a finance admin opens every device page
    pages = {
        "totp list": client.get(reverse("admin:core_authenticatordevice_changelist")),
        "totp page": client.get(reverse("admin:core_authenticatordevice_change", args=[totp.pk])),
        "totp history": client.get(
            reverse("admin:core_authenticatordevice_history", args=[totp.pk])
        ),
        "static list": client.get(reverse("admin:core_recoverycodedevice_changelist")),
        "static page": client.get(
            reverse("admin:core_recoverycodedevice_change", args=[static.pk])
        ),
    }
    retired = {
        "plugin totp list": client.get("/admin/otp_totp/totpdevice/"),
        "plugin static list": client.get("/admin/otp_static/staticdevice/"),
        "plugin config": client.get(f"/admin/otp_totp/totpdevice/{totp.pk}/config/"),
    }

    # then the pages load without the key or any code, and the key pages do not exist
    assert {name: page.status_code for name, page in pages.items()} == dict.fromkeys(pages, 200)
    html = "".join(page.content.decode() for page in pages.values())
    assert totp.key not in html
    assert totp.key.upper() not in html
    assert [code for code in codes if code in html] == []
    assert {name: page.status_code for name, page in retired.items()} == dict.fromkeys(retired, 404)
    with pytest.raises(NoReverseMatch):
        reverse("admin:core_authenticatordevice_config", args=[totp.pk])


def test_superuser_changes_a_device_without_seeing_its_key_and_it_is_logged(
    make_user: Callable[..., User], caplog: pytest.LogCaptureFixture
) -> None:
    # given another user's authenticator and a superuser
    other = make_user(Role.CONTROLLER, username="cleo", mfa=False)
    totp, codes = mfa_enroll(user=other)
    root = _superuser()
    client = verified_client(root)
    url = reverse("admin:core_authenticatordevice_change", args=[totp.pk])

    # when the superuser opens it, then marks it unconfirmed with a key in the post
    page = client.get(url)
    with caplog.at_level(logging.INFO, logger="core.accounts"):
        response = client.post(
            url,
            {
                "name": "Authenticator",
                "key": "00" * 20,
                "throttling_failure_timestamp_0": "",
                "throttling_failure_timestamp_1": "",
                "throttling_failure_count": "0",
            },
        )

    # then the key was neither shown nor changed, and the change is logged without it
    assert page.status_code == 200
    assert totp.key not in page.content.decode()
    assert response.status_code == 302
    device = AuthenticatorDevice.objects.get(pk=totp.pk)
    assert (device.confirmed, device.key) == (False, totp.key)
    [line] = _change_lines(caplog)
    assert (line["actor"], line["action"], line["model"], line["object"]) == (
        "root",
        "change",
        "core.authenticatordevice",
        "Authenticator (cleo)",
    )
    assert line["changes"] == {"confirmed": [True, False]}
    logged = "".join(r.getMessage() for r in caplog.records)
    assert totp.key not in logged
    assert [code for code in codes if code in logged] == []
    assert RecoveryCode.objects.filter(device__user=other).count() == 10


def test_device_deleted_by_a_superuser_is_logged(
    make_user: Callable[..., User], caplog: pytest.LogCaptureFixture
) -> None:
    # given a lost phone
    other = make_user(Role.CONTROLLER, username="cleo")
    device = AuthenticatorDevice.objects.get(user=other)
    client = verified_client(_superuser())

    # when a superuser deletes it
    with caplog.at_level(logging.INFO, logger="core.accounts"):
        response = client.post(
            reverse("admin:core_authenticatordevice_delete", args=[device.pk]), {"post": "yes"}
        )

    # then
    assert response.status_code == 302
    assert not AuthenticatorDevice.objects.filter(user=other).exists()
    [line] = _change_lines(caplog)
    assert (line["action"], line["object"], line["object_id"]) == (
        "delete",
        "phone (cleo)",
        device.pk,
    )


def test_devices_are_enrolled_by_the_command_not_added_in_the_admin() -> None:
    # given a superuser in the admin
    client = verified_client(_superuser())
    # when they open the add pages
    statuses = [
        client.get(reverse("admin:core_authenticatordevice_add")).status_code,
        client.get(reverse("admin:core_recoverycodedevice_add")).status_code,
    ]
    # then there are none
    assert statuses == [403, 403]


def test_users_are_deactivated_never_deleted_in_the_admin(
    make_user: Callable[..., User],
) -> None:
    other = make_user(Role.APPROVER)
    client = verified_client(_superuser())
    response = client.post(reverse("admin:auth_user_delete", args=[other.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert User.objects.filter(pk=other.pk).exists()
