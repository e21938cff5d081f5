from django.urls import include, path

from billing.api import gdpr_views as gdpr
from billing.api import subscription_views as subs
from billing.api import views
from billing.api.pdf import InvoicePdfApi

urlpatterns = [
    path("customers", views.CustomerListCreateApi.as_view(), name="billing-customers"),
    path("customers/<int:customer_id>", views.CustomerDetailApi.as_view(), name="billing-customer"),
    path(
        "customers/<int:customer_id>/export",
        gdpr.CustomerExportApi.as_view(),
        name="billing-customer-export",
    ),
    path(
        "customers/<int:customer_id>/erase",
        gdpr.CustomerEraseApi.as_view(),
        name="billing-customer-erase",
    ),
    path("invoices", views.InvoiceListCreateApi.as_view(), name="billing-invoices"),
    path("invoices/<int:invoice_id>", views.InvoiceDetailApi.as_view(), name="billing-invoice"),
    path(
        "invoices/<int:invoice_id>/issue",
        views.InvoiceIssueApi.as_view(),
        name="billing-invoice-issue",
    ),
    path(
        "invoices/<int:invoice_id>/void",
        views.InvoiceVoidApi.as_view(),
        name="billing-invoice-void",
    ),
    path(
        "invoices/<int:invoice_id>/mark-uncollectible",
        views.InvoiceMarkUncollectibleApi.as_view(),
        name="billing-invoice-uncollectible",
    ),
    path(
        "invoices/<int:invoice_id>/apply-credit",
        views.InvoiceApplyCreditApi.as_view(),
        name="billing-invoice-apply-credit",
    ),
    path("invoices/<int:invoice_id>/pdf", InvoicePdfApi.as_view(), name="billing-invoice-pdf"),
    path(
        "invoices/<int:invoice_id>/hosted-link",
        views.InvoiceHostedLinkApi.as_view(),
        name="billing-invoice-hosted-link",
    ),
    path(
        "invoices/<int:invoice_id>/hosted-link/revoke",
        views.InvoiceHostedLinkRevokeApi.as_view(),
        name="billing-invoice-hosted-link-revoke",
    ),
    path("products", subs.ProductListCreateApi.as_view(), name="billing-products"),
    path("prices", subs.PriceListCreateApi.as_view(), name="billing-prices"),
    path("subscriptions", subs.SubscriptionListCreateApi.as_view(), name="billing-subscriptions"),
    path(
        "subscriptions/<int:subscription_id>",
        subs.SubscriptionDetailApi.as_view(),
        name="billing-subscription",
    ),
    path(
        "subscriptions/<int:subscription_id>/change",
        subs.SubscriptionChangeApi.as_view(),
        name="billing-subscription-change",
    ),
    path(
        "subscriptions/<int:subscription_id>/cancel",
        subs.SubscriptionCancelApi.as_view(),
        name="billing-subscription-cancel",
    ),
    path(
        "subscriptions/<int:subscription_id>/pause",
        subs.SubscriptionPauseApi.as_view(),
        name="billing-subscription-pause",
    ),
    path(
        "subscriptions/<int:subscription_id>/resume",
        subs.SubscriptionResumeApi.as_view(),
        name="billing-subscription-resume",
    ),
    path("usage-events", subs.UsageEventBatchApi.as_view(), name="billing-usage-events"),
    path("credit-notes", views.CreditNoteListCreateApi.as_view(), name="billing-credit-notes"),
    path("refunds", views.RefundListCreateApi.as_view(), name="billing-refunds"),
    path("payments", views.PaymentListCreateApi.as_view(), name="billing-payments"),
    path("payments/<int:payment_id>", views.PaymentDetailApi.as_view(), name="billing-payment"),
    path("", include("billing.api.processor_urls")),
]
