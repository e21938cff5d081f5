from django.urls import path

from billing.hosted import views

app_name = "hosted"

urlpatterns = [
    path("<str:token>/", views.invoice_page, name="invoice"),
    path("<str:token>/pdf", views.invoice_pdf, name="invoice_pdf"),
    path("<str:token>/pay", views.invoice_pay, name="invoice_pay"),
    path("<str:token>/paypal", views.paypal_return, name="paypal_return"),
]
