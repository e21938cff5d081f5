from django.urls import path

from payables.screens import views

app_name = "approvals"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("<slug:kind>/<int:pk>/", views.document_detail, name="detail"),
    path("<slug:kind>/<int:pk>/decide/", views.document_decide, name="decide"),
    path("<slug:kind>/<int:pk>/files/<slug:name>/", views.document_file, name="file"),
]
