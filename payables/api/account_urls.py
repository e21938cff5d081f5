from django.urls import path

from payables.api.payable_views import PayableListApi

urlpatterns = [path("payable", PayableListApi.as_view(), name="accounts-payable")]
