from django.urls import path

from billing.api import processor_views as views

urlpatterns = [
    path(
        "customers/<int:customer_id>/payment-methods",
        views.PaymentMethodListCreateApi.as_view(),
        name="billing-payment-methods",
    ),
    path(
        "customers/<int:customer_id>/payment-methods/<int:payment_method_id>",
        views.PaymentMethodDetailApi.as_view(),
        name="billing-payment-method",
    ),
    path(
        "invoices/<int:invoice_id>/charge",
        views.InvoiceChargeApi.as_view(),
        name="billing-invoice-charge",
    ),
    path(
        "invoices/<int:invoice_id>/paypal-order",
        views.InvoicePayPalOrderApi.as_view(),
        name="billing-invoice-paypal-order",
    ),
    path(
        "invoices/<int:invoice_id>/paypal-capture",
        views.InvoicePayPalCaptureApi.as_view(),
        name="billing-invoice-paypal-capture",
    ),
    path(
        "invoices/<int:invoice_id>/coinbase-charge",
        views.InvoiceCoinbaseChargeApi.as_view(),
        name="billing-invoice-coinbase-charge",
    ),
    path("webhooks/stripe", views.StripeWebhookApi.as_view(), name="billing-webhook-stripe"),
    path("webhooks/paypal", views.PayPalWebhookApi.as_view(), name="billing-webhook-paypal"),
    path("webhooks/coinbase", views.CoinbaseWebhookApi.as_view(), name="billing-webhook-coinbase"),
]
