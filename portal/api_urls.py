from django.urls import path

from portal import api

urlpatterns = [
    path("customers/<int:customer_id>/link", api.PortalLinkApi.as_view(), name="portal-link"),
    path("customers/<int:customer_id>/revoke", api.PortalRevokeApi.as_view(), name="portal-revoke"),
]
