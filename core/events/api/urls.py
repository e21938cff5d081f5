from django.urls import path

from core.events.api import views

urlpatterns = [
    path("events", views.EventListApi.as_view(), name="events"),
    path("events/<str:event_id>", views.EventDetailApi.as_view(), name="event"),
    path("events/<str:event_id>/replay", views.EventReplayApi.as_view(), name="event-replay"),
    path("webhook-endpoints", views.EndpointListCreateApi.as_view(), name="webhook-endpoints"),
    path(
        "webhook-endpoints/<int:endpoint_id>",
        views.EndpointDetailApi.as_view(),
        name="webhook-endpoint",
    ),
    path(
        "webhook-endpoints/<int:endpoint_id>/rotate-secret",
        views.EndpointRotateApi.as_view(),
        name="webhook-endpoint-rotate",
    ),
]
