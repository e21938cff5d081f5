from django.urls import path

from payables.api import gdpr_views as gdpr
from payables.api import views as v

urlpatterns = [
    path("vendors", v.VendorListCreateApi.as_view(), name="payables-vendors"),
    path("vendors/<int:vendor_id>", v.VendorDetailApi.as_view(), name="payables-vendor"),
    path(
        "vendors/<int:vendor_id>/activate",
        v.VendorActivateApi.as_view(),
        name="payables-vendor-activate",
    ),
    path("vendors/<int:vendor_id>/block", v.VendorBlockApi.as_view(), name="payables-vendor-block"),
    path(
        "vendors/<int:vendor_id>/export",
        gdpr.VendorExportApi.as_view(),
        name="payables-vendor-export",
    ),
    path(
        "vendors/<int:vendor_id>/erase",
        gdpr.VendorEraseApi.as_view(),
        name="payables-vendor-erase",
    ),
    path(
        "vendors/<int:vendor_id>/bank-changes",
        v.VendorBankChangeListRequestApi.as_view(),
        name="payables-vendor-bank-changes",
    ),
    path(
        "vendors/<int:vendor_id>/documents",
        v.VendorDocumentUploadApi.as_view(),
        name="payables-vendor-documents",
    ),
    path(
        "bank-changes/<int:change_id>/approve",
        v.BankChangeApproveApi.as_view(),
        name="payables-bank-change-approve",
    ),
    path(
        "bank-changes/<int:change_id>/reject",
        v.BankChangeRejectApi.as_view(),
        name="payables-bank-change-reject",
    ),
    path("purchase-orders", v.PurchaseOrderListCreateApi.as_view(), name="payables-orders"),
    path(
        "purchase-orders/<int:order_id>",
        v.PurchaseOrderDetailApi.as_view(),
        name="payables-order",
    ),
    path(
        "purchase-orders/<int:order_id>/submit",
        v.PurchaseOrderSubmitApi.as_view(),
        name="payables-order-submit",
    ),
    path(
        "purchase-orders/<int:order_id>/approve",
        v.PurchaseOrderApproveApi.as_view(),
        name="payables-order-approve",
    ),
    path(
        "purchase-orders/<int:order_id>/reject",
        v.PurchaseOrderRejectApi.as_view(),
        name="payables-order-reject",
    ),
    path(
        "purchase-orders/<int:order_id>/order",
        v.PurchaseOrderPlaceApi.as_view(),
        name="payables-order-place",
    ),
    path(
        "purchase-orders/<int:order_id>/cancel",
        v.PurchaseOrderCancelApi.as_view(),
        name="payables-order-cancel",
    ),
    path("receipts", v.ReceiptListCreateApi.as_view(), name="payables-receipts"),
    path("bills", v.BillListCreateApi.as_view(), name="payables-bills"),
    path("bills/<int:bill_id>", v.BillDetailApi.as_view(), name="payables-bill"),
    path("bills/<int:bill_id>/submit", v.BillSubmitApi.as_view(), name="payables-bill-submit"),
    path("bills/<int:bill_id>/approve", v.BillApproveApi.as_view(), name="payables-bill-approve"),
    path("bills/<int:bill_id>/reject", v.BillRejectApi.as_view(), name="payables-bill-reject"),
    path("bills/<int:bill_id>/void", v.BillVoidApi.as_view(), name="payables-bill-void"),
    path("expense-reports", v.ExpenseReportListCreateApi.as_view(), name="payables-expenses"),
    path(
        "expense-reports/<int:report_id>",
        v.ExpenseReportDetailApi.as_view(),
        name="payables-expense",
    ),
    path(
        "expense-reports/<int:report_id>/submit",
        v.ExpenseReportSubmitApi.as_view(),
        name="payables-expense-submit",
    ),
    path(
        "expense-reports/<int:report_id>/approve",
        v.ExpenseReportApproveApi.as_view(),
        name="payables-expense-approve",
    ),
    path(
        "expense-reports/<int:report_id>/reject",
        v.ExpenseReportRejectApi.as_view(),
        name="payables-expense-reject",
    ),
    path(
        "expense-lines/<int:line_id>/receipt",
        v.ExpenseReceiptUploadApi.as_view(),
        name="payables-expense-receipt",
    ),
    path("payment-runs", v.PaymentRunListCreateApi.as_view(), name="payables-runs"),
    path("payment-runs/<int:run_id>", v.PaymentRunDetailApi.as_view(), name="payables-run"),
    path(
        "payment-runs/<int:run_id>/submit",
        v.PaymentRunSubmitApi.as_view(),
        name="payables-run-submit",
    ),
    path(
        "payment-runs/<int:run_id>/approve",
        v.PaymentRunApproveApi.as_view(),
        name="payables-run-approve",
    ),
    path(
        "payment-runs/<int:run_id>/reject",
        v.PaymentRunRejectApi.as_view(),
        name="payables-run-reject",
    ),
    path(
        "payment-runs/<int:run_id>/export",
        v.PaymentRunExportApi.as_view(),
        name="payables-run-export",
    ),
    path(
        "payment-runs/<int:run_id>/confirm",
        v.PaymentRunConfirmApi.as_view(),
        name="payables-run-confirm",
    ),
    path(
        "payment-runs/<int:run_id>/cancel",
        v.PaymentRunCancelApi.as_view(),
        name="payables-run-cancel",
    ),
    path("payment-runs/<int:run_id>/file", v.PaymentRunFileApi.as_view(), name="payables-run-file"),
]
