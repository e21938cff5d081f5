"""``GET /api/users/{id}/export``: everything held about a user (GDPR art. 15 and 20), as a
JSON attachment. Roles: the user administrators (``auth.change_user``: finance_admin and
superusers), who see and change users anyway; logged in the admin log (``core.gdpr``)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.gdpr import user_export


class UserExportApi(APIView):
    """The account, roles, second-factor devices (names only), API tokens (no digests),
    sign-in records, the admin log by and about the user, and how many history rows they
    authored per model; served as ``user-{id}-personal-data.json``."""

    required_permissions = {"GET": ["auth.change_user"]}

    @extend_schema(
        summary="Export a user's personal data (GDPR)",
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="The JSON export"),
            403: OpenApiResponse(description="Only user administrators export"),
            404: OpenApiResponse(description="No such user"),
        },
    )
    def get(self, request: Request, user_id: int) -> Response:
        data = user_export(actor=request.user, user_id=user_id)
        filename = f"user-{user_id}-personal-data.json"
        return Response(data, headers={"Content-Disposition": f'attachment; filename="{filename}"'})
