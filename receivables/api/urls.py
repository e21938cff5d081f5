from django.urls import path

from receivables.api import views

urlpatterns = [
    path("receivable", views.ReceivableListApi.as_view(), name="accounts-receivable"),
]
