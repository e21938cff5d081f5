"""Staff and integrations send a customer a portal link, or revoke their portal access."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.services import portal_link_send, portal_revoke


class PortalLinkSentOutput(serializers.Serializer):
    sent_to = serializers.EmailField()
    expires_at = serializers.DateTimeField()


class PortalRevokedOutput(serializers.Serializer):
    links = serializers.IntegerField()
    sessions = serializers.IntegerField()


class PortalLinkApi(APIView):
    """Email the customer a link to the portal (their billing email)."""

    required_permissions = {"POST": ["portal.send_portallink"]}

    @extend_schema(request=None, responses={202: PortalLinkSentOutput})
    def post(self, request: Request, customer_id: int) -> Response:
        link = portal_link_send(actor=request.user, customer_id=customer_id)
        return Response(
            {"sent_to": link.sent_to, "expires_at": link.expires_at},
            status=status.HTTP_202_ACCEPTED,
        )


class PortalRevokeApi(APIView):
    """Withdraw the customer's unused links and end their sessions."""

    required_permissions = {"POST": ["portal.revoke_portal"]}

    @extend_schema(request=None, responses=PortalRevokedOutput)
    def post(self, request: Request, customer_id: int) -> Response:
        revoked = portal_revoke(actor=request.user, customer_id=customer_id)
        return Response({"links": revoked.links, "sessions": revoked.sessions})
