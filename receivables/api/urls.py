from django.urls import include, path

from receivables.api import credit_views, views

urlpatterns = [
    path("receivable", views.ReceivableListApi.as_view(), name="accounts-receivable"),
    path(
        "credit/<int:customer_id>",
        credit_views.CustomerCreditApi.as_view(),
        name="accounts-credit",
    ),
    path("", include("receivables.api.plan_views")),
    path("", include("receivables.api.dispute_urls")),
]
