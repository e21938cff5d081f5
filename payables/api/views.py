"""``/api/payables/...``: one view per operation; each validates, calls one service and
renders. Refusals come from the services with a stable code (core.api.errors)."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.pagination import Pagination, paged
from core.exceptions import NotFound
from payables.api import serializers as s
from payables.enums import (
    BankChangeStatus,
    BillStatus,
    DocumentKind,
    ExpenseReportStatus,
    PaymentRunStatus,
    PurchaseOrderStatus,
    VendorStatus,
)
from payables.models import (
    Bill,
    ExpenseReport,
    PaymentRun,
    PurchaseOrder,
    PurchaseOrderLine,
    Receipt,
    Vendor,
    VendorBankChange,
    VendorDocument,
)
from payables.services import bills as bill_services
from payables.services import expenses as expense_services
from payables.services import orders as order_services
from payables.services import runs as run_services
from payables.services import vendors as vendor_services
from payables.services.approvals import approvals_active


def _paginate(
    view: APIView, request: Request, qs: Any, out: type[serializers.Serializer]
) -> Response:
    paginator = Pagination()
    page = paginator.paginate_queryset(qs, request, view=view)
    return paginator.get_paginated_response([dict(out(obj).data) for obj in page])


def _get(qs: QuerySet, pk: int, what: str) -> Any:
    obj = qs.filter(pk=pk).first()
    if obj is None:
        raise NotFound(f"{what} {pk} does not exist.")
    return obj


def _with_approvals(data: dict[str, Any], kind: str, object_id: int) -> dict[str, Any]:
    data["approvals"] = s.approvals_out(approvals_active(kind, object_id))
    return data


# --- Vendors -----------------------------------------------------------------------------------

VENDOR_VIEW = ["payables.view_vendor"]


def _vendors() -> QuerySet[Vendor]:
    pending = VendorBankChange.objects.filter(
        vendor=OuterRef("pk"), status=BankChangeStatus.PENDING
    )
    return Vendor.objects.annotate(on_hold=Exists(pending)).order_by("name", "pk")


def _vendor_out(vendor: Vendor) -> dict[str, Any]:
    if not hasattr(vendor, "on_hold"):
        vendor = _vendors().get(pk=vendor.pk)
    return dict(s.VendorOutput(vendor).data)


class VendorListCreateApi(APIView):
    """GET: vendors (filters ``status``, ``q``). POST: a vendor in onboarding (``name``,
    ``email``, ``currency``; the rest optional), active only after a second person activates
    it. Roles: view finance_admin, ap_clerk, approver, controller, auditor, integration;
    create finance_admin, ap_clerk, integration."""

    required_permissions = {"GET": VENDOR_VIEW, "POST": ["payables.add_vendor"]}

    class FilterInput(serializers.Serializer):
        status = serializers.ChoiceField(choices=VendorStatus.choices, required=False)
        q = serializers.CharField(required=False, max_length=100)

    @extend_schema(
        parameters=[OpenApiParameter("status", str), OpenApiParameter("q", str)],
        responses=paged(s.VendorOutput),
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = _vendors()
        if "status" in filters.validated_data:
            qs = qs.filter(status=filters.validated_data["status"])
        if "q" in filters.validated_data:
            qs = qs.filter(name__icontains=filters.validated_data["q"])
        return _paginate(self, request, qs, s.VendorOutput)

    @extend_schema(request=s.VendorInput, responses={201: s.VendorOutput})
    def post(self, request: Request) -> Response:
        data = s.VendorInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        bank = values.pop("bank", None)
        vendor = vendor_services.vendor_create(
            actor=request.user,
            bank=vendor_services.BankDetails(**bank) if bank else None,
            **values,
        )
        return Response(_vendor_out(vendor), status=status.HTTP_201_CREATED)


class VendorDetailApi(APIView):
    required_permissions = {"GET": VENDOR_VIEW}

    @extend_schema(responses=s.VendorOutput)
    def get(self, request: Request, vendor_id: int) -> Response:
        return Response(_vendor_out(_get(_vendors(), vendor_id, "Vendor")))


class VendorActivateApi(APIView):
    """Onboarding -> active, by someone other than whoever added the vendor (approver,
    controller, finance_admin)."""

    required_permissions = {"POST": VENDOR_VIEW}

    @extend_schema(request=None, responses=s.VendorOutput)
    def post(self, request: Request, vendor_id: int) -> Response:
        vendor = vendor_services.vendor_activate(vendor_id=vendor_id, actor=request.user)
        return Response(_vendor_out(vendor))


class VendorBlockApi(APIView):
    required_permissions = {"POST": ["payables.activate_vendor"]}

    @extend_schema(request=s.PayablesReasonInput, responses=s.VendorOutput)
    def post(self, request: Request, vendor_id: int) -> Response:
        data = s.PayablesReasonInput(data=request.data)
        data.is_valid(raise_exception=True)
        vendor = vendor_services.vendor_block(
            vendor_id=vendor_id, reason=data.validated_data["reason"], actor=request.user
        )
        return Response(_vendor_out(vendor))


class VendorBankChangeListRequestApi(APIView):
    """GET: the vendor's bank detail changes (masked). POST: ask for new details; they take
    effect only after a second person approves, and the vendor is on hold meanwhile."""

    required_permissions = {"GET": VENDOR_VIEW, "POST": ["payables.add_vendorbankchange"]}

    class RequestInput(s.BankDetailsInput):
        reason = serializers.CharField(max_length=300)

    @extend_schema(responses=paged(s.BankChangeOutput))
    def get(self, request: Request, vendor_id: int) -> Response:
        _get(Vendor.objects, vendor_id, "Vendor")
        qs = VendorBankChange.objects.filter(vendor_id=vendor_id).select_related(
            "requested_by", "decided_by"
        )
        return _paginate(self, request, qs, s.BankChangeOutput)

    @extend_schema(request=RequestInput, responses={201: s.BankChangeOutput})
    def post(self, request: Request, vendor_id: int) -> Response:
        data = self.RequestInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        reason = values.pop("reason")
        change = vendor_services.vendor_bank_change_request(
            vendor_id=vendor_id,
            bank=vendor_services.BankDetails(**values),
            reason=reason,
            actor=request.user,
        )
        return Response(dict(s.BankChangeOutput(change).data), status=status.HTTP_201_CREATED)


class BankChangeApproveApi(APIView):
    """A second person (not the requester) applies the new details."""

    required_permissions = {"POST": VENDOR_VIEW}

    @extend_schema(request=s.DecisionInput, responses=s.BankChangeOutput)
    def post(self, request: Request, change_id: int) -> Response:
        data = s.DecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        change = vendor_services.vendor_bank_change_approve(
            change_id=change_id, actor=request.user, **data.validated_data
        )
        return Response(dict(s.BankChangeOutput(change).data))


class BankChangeRejectApi(APIView):
    required_permissions = {"POST": VENDOR_VIEW}

    @extend_schema(request=s.DecisionInput, responses=s.BankChangeOutput)
    def post(self, request: Request, change_id: int) -> Response:
        data = s.DecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        change = vendor_services.vendor_bank_change_reject(
            change_id=change_id, actor=request.user, **data.validated_data
        )
        return Response(dict(s.BankChangeOutput(change).data))


class VendorDocumentUploadApi(APIView):
    """Multipart ``file`` and ``kind`` (w9, w8, certificate, other): PDF, PNG or JPEG by
    content, at most 10 MB."""

    required_permissions = {"GET": VENDOR_VIEW, "POST": ["payables.add_vendordocument"]}
    parser_classes = [MultiPartParser, FormParser]

    class VendorDocumentInput(serializers.Serializer):
        kind = serializers.ChoiceField(choices=VendorDocument.Kind.choices)
        file = serializers.FileField()

    @extend_schema(responses=paged(s.DocumentOutput))
    def get(self, request: Request, vendor_id: int) -> Response:
        _get(Vendor.objects, vendor_id, "Vendor")
        return _paginate(
            self, request, VendorDocument.objects.filter(vendor_id=vendor_id), s.DocumentOutput
        )

    @extend_schema(request=VendorDocumentInput, responses={201: s.DocumentOutput})
    def post(self, request: Request, vendor_id: int) -> Response:
        data = self.VendorDocumentInput(data=request.data)
        data.is_valid(raise_exception=True)
        document = vendor_services.vendor_document_upload(
            vendor_id=vendor_id,
            kind=data.validated_data["kind"],
            upload=data.validated_data["file"],
            actor=request.user,
        )
        return Response(dict(s.DocumentOutput(document).data), status=status.HTTP_201_CREATED)


# --- Purchase orders ---------------------------------------------------------------------------

PO_VIEW = ["payables.view_purchaseorder"]


def _orders() -> QuerySet[PurchaseOrder]:
    return PurchaseOrder.objects.select_related("requester").prefetch_related(
        Prefetch("lines", queryset=PurchaseOrderLine.objects.order_by("position"))
    )


def _order_out(order: PurchaseOrder) -> dict[str, Any]:
    order = _orders().get(pk=order.pk)
    data = dict(s.OrderOutput(order).data)
    return _with_approvals(data, DocumentKind.PURCHASE_ORDER, order.pk)


class PurchaseOrderListCreateApi(APIView):
    """GET: orders (filters ``status``, ``vendor``). POST: a draft order for an active vendor,
    requested by the caller. Roles: view finance_admin, ap_clerk, approver, controller,
    auditor, integration; create also approver and controller (anyone may ask to spend)."""

    required_permissions = {"GET": PO_VIEW, "POST": ["payables.add_purchaseorder"]}

    class FilterInput(serializers.Serializer):
        status = serializers.ChoiceField(choices=PurchaseOrderStatus.choices, required=False)
        vendor = serializers.IntegerField(required=False, min_value=1)

    @extend_schema(
        parameters=[OpenApiParameter("status", str), OpenApiParameter("vendor", int)],
        responses=paged(s.OrderOutput),
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = _orders()
        if "status" in filters.validated_data:
            qs = qs.filter(status=filters.validated_data["status"])
        if "vendor" in filters.validated_data:
            qs = qs.filter(vendor_id=filters.validated_data["vendor"])
        return _paginate(self, request, qs.order_by("-created_at", "-pk"), s.OrderOutput)

    @extend_schema(request=s.OrderInput, responses={201: s.OrderOutput})
    def post(self, request: Request) -> Response:
        data = s.OrderInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        order = order_services.purchase_order_create(
            vendor_id=v["vendor"],
            currency=v["currency"],
            department=v["department"],
            description=v["description"],
            lines=[order_services.LineInput(**line) for line in v["lines"]],
            actor=request.user,
        )
        return Response(_order_out(order), status=status.HTTP_201_CREATED)


class PurchaseOrderDetailApi(APIView):
    required_permissions = {"GET": PO_VIEW}

    @extend_schema(responses=s.OrderOutput)
    def get(self, request: Request, order_id: int) -> Response:
        return Response(_order_out(_get(PurchaseOrder.objects, order_id, "Purchase order")))


class PurchaseOrderSubmitApi(APIView):
    """Draft -> pending_approval (or straight to approved below the first level)."""

    required_permissions = {"POST": ["payables.add_purchaseorder"]}

    @extend_schema(request=None, responses=s.OrderOutput)
    def post(self, request: Request, order_id: int) -> Response:
        order = order_services.purchase_order_submit(order_id=order_id, actor=request.user)
        return Response(_order_out(order))


class PurchaseOrderApproveApi(APIView):
    """One approval with an optional ``comment``. 403 with ``requester_cannot_approve``,
    ``approval_role_required`` or ``already_counted`` when the caller may not."""

    required_permissions = {"POST": PO_VIEW}

    @extend_schema(request=s.DecisionInput, responses=s.OrderOutput)
    def post(self, request: Request, order_id: int) -> Response:
        data = s.DecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        order = order_services.purchase_order_approve(
            order_id=order_id, actor=request.user, **data.validated_data
        )
        return Response(_order_out(order))


class PurchaseOrderRejectApi(APIView):
    required_permissions = {"POST": PO_VIEW}

    @extend_schema(request=s.DecisionInput, responses=s.OrderOutput)
    def post(self, request: Request, order_id: int) -> Response:
        data = s.DecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        order = order_services.purchase_order_reject(
            order_id=order_id, actor=request.user, **data.validated_data
        )
        return Response(_order_out(order))


class PurchaseOrderPlaceApi(APIView):
    """Approved -> ordered; the PDF is emailed to the vendor (finance_admin, ap_clerk)."""

    required_permissions = {"POST": ["payables.order_purchaseorder"]}

    @extend_schema(request=None, responses=s.OrderOutput)
    def post(self, request: Request, order_id: int) -> Response:
        order = order_services.purchase_order_place(order_id=order_id, actor=request.user)
        return Response(_order_out(order))


class PurchaseOrderCancelApi(APIView):
    required_permissions = {"POST": ["payables.change_purchaseorder"]}

    @extend_schema(request=s.PayablesReasonInput, responses=s.OrderOutput)
    def post(self, request: Request, order_id: int) -> Response:
        data = s.PayablesReasonInput(data=request.data)
        data.is_valid(raise_exception=True)
        order = order_services.purchase_order_cancel(
            order_id=order_id, actor=request.user, reason=data.validated_data["reason"]
        )
        return Response(_order_out(order))


class ReceiptListCreateApi(APIView):
    """GET: receipts (filter ``purchase_order``). POST: goods or services received against
    an ordered order's lines (finance_admin, ap_clerk, integration)."""

    required_permissions = {"GET": ["payables.view_receipt"], "POST": ["payables.add_receipt"]}

    class FilterInput(serializers.Serializer):
        purchase_order = serializers.IntegerField(required=False, min_value=1)

    @extend_schema(
        parameters=[OpenApiParameter("purchase_order", int)],
        responses=paged(s.ReceiptOutput),
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = Receipt.objects.prefetch_related("lines").order_by("-received_on", "-pk")
        if "purchase_order" in filters.validated_data:
            qs = qs.filter(order_id=filters.validated_data["purchase_order"])
        return _paginate(self, request, qs, s.ReceiptOutput)

    @extend_schema(request=s.ReceiptInput, responses={201: s.ReceiptOutput})
    def post(self, request: Request) -> Response:
        data = s.ReceiptInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        receipt = order_services.receipt_create(
            order_id=v["purchase_order"],
            received_on=v.get("received_on"),
            note=v["note"],
            lines=[
                order_services.ReceiptLineInput(line["order_line"], line["quantity"])
                for line in v["lines"]
            ],
            actor=request.user,
        )
        receipt = Receipt.objects.prefetch_related("lines").get(pk=receipt.pk)
        return Response(dict(s.ReceiptOutput(receipt).data), status=status.HTTP_201_CREATED)


# --- Bills -------------------------------------------------------------------------------------

BILL_VIEW = ["payables.view_bill"]


def _bill_out(bill: Bill) -> dict[str, Any]:
    bill = Bill.objects.prefetch_related("lines").get(pk=bill.pk)
    return _with_approvals(dict(s.BillOutput(bill).data), DocumentKind.BILL, bill.pk)


class BillListCreateApi(APIView):
    """GET: bills (filters ``status``, ``vendor``, ``match_status``). POST: capture a bill;
    it is matched against its order and receipts and waits for approval (never approved
    automatically). Duplicates are refused with 409 (``duplicate_bill``,
    ``suspected_duplicate``). Roles: create finance_admin, ap_clerk, integration."""

    required_permissions = {"GET": BILL_VIEW, "POST": ["payables.add_bill"]}

    class FilterInput(serializers.Serializer):
        status = serializers.ChoiceField(choices=BillStatus.choices, required=False)
        vendor = serializers.IntegerField(required=False, min_value=1)
        match_status = serializers.CharField(required=False, max_length=20)

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str),
            OpenApiParameter("vendor", int),
            OpenApiParameter("match_status", str),
        ],
        responses=paged(s.BillOutput),
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = Bill.objects.prefetch_related("lines").filter(
            **{("vendor_id" if k == "vendor" else k): v for k, v in filters.validated_data.items()}
        )
        return _paginate(self, request, qs.order_by("-bill_date", "-pk"), s.BillOutput)

    @extend_schema(request=s.BillInput, responses={201: s.BillOutput})
    def post(self, request: Request) -> Response:
        data = s.BillInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        bill = bill_services.bill_create(
            vendor_id=v["vendor"],
            number=v["number"],
            currency=v["currency"],
            bill_date=v["bill_date"],
            due_date=v.get("due_date"),
            purchase_order_id=v.get("purchase_order"),
            description=v["description"],
            duplicate_override_reason=v["duplicate_override_reason"],
            lines=[
                bill_services.BillLineInput(
                    description=line["description"],
                    quantity=line["quantity"],
                    unit_price=line["unit_price"],
                    order_line_id=line.get("order_line"),
                    account_id=line.get("account"),
                )
                for line in v["lines"]
            ],
            actor=request.user,
        )
        return Response(_bill_out(bill), status=status.HTTP_201_CREATED)


class BillDetailApi(APIView):
    required_permissions = {"GET": BILL_VIEW}

    @extend_schema(responses=s.BillOutput)
    def get(self, request: Request, bill_id: int) -> Response:
        return Response(_bill_out(_get(Bill.objects, bill_id, "Bill")))


class BillSubmitApi(APIView):
    required_permissions = {"POST": ["payables.change_bill"]}

    @extend_schema(request=None, responses=s.BillOutput)
    def post(self, request: Request, bill_id: int) -> Response:
        return Response(_bill_out(bill_services.bill_submit(bill_id=bill_id, actor=request.user)))


class BillApproveApi(APIView):
    """One approval (never by whoever captured the bill). A bill with a match exception
    needs ``accept_match_exception: true`` from the approver, else 409 ``match_exception``.
    The last approval posts Dr expense / Cr AP."""

    required_permissions = {"POST": BILL_VIEW}

    @extend_schema(request=s.BillApproveInput, responses=s.BillOutput)
    def post(self, request: Request, bill_id: int) -> Response:
        data = s.BillApproveInput(data=request.data)
        data.is_valid(raise_exception=True)
        bill = bill_services.bill_approve(
            bill_id=bill_id, actor=request.user, **data.validated_data
        )
        return Response(_bill_out(bill))


class BillRejectApi(APIView):
    required_permissions = {"POST": BILL_VIEW}

    @extend_schema(request=s.BillRejectInput, responses=s.BillOutput)
    def post(self, request: Request, bill_id: int) -> Response:
        data = s.BillRejectInput(data=request.data)
        data.is_valid(raise_exception=True)
        bill = bill_services.bill_reject(
            bill_id=bill_id, actor=request.user, comment=data.validated_data["comment"]
        )
        return Response(_bill_out(bill))


class BillVoidApi(APIView):
    required_permissions = {"POST": ["payables.change_bill"]}

    @extend_schema(request=s.PayablesReasonInput, responses=s.BillOutput)
    def post(self, request: Request, bill_id: int) -> Response:
        data = s.PayablesReasonInput(data=request.data)
        data.is_valid(raise_exception=True)
        bill = bill_services.bill_void(
            bill_id=bill_id, actor=request.user, reason=data.validated_data["reason"]
        )
        return Response(_bill_out(bill))


# --- Expense reports ---------------------------------------------------------------------------

EXPENSE_VIEW = ["payables.view_expensereport"]


def _report_out(report: ExpenseReport) -> dict[str, Any]:
    report = (
        ExpenseReport.objects.select_related("employee")
        .prefetch_related("lines__category")
        .get(pk=report.pk)
    )
    return _with_approvals(
        dict(s.ExpenseReportOutput(report).data), DocumentKind.EXPENSE_REPORT, report.pk
    )


def _reports_for(request: Request) -> QuerySet[ExpenseReport]:
    """Everyone sees their own reports; those who may view reports see all."""
    qs = ExpenseReport.objects.select_related("employee").prefetch_related("lines__category")
    if request.user.has_perm("payables.view_expensereport"):
        return qs
    return qs.filter(employee=request.user)


class ExpenseReportListCreateApi(APIView):
    """GET: expense reports (one's own, or all for finance roles). POST: a draft report of
    the caller's own spending (every staff role but the auditor)."""

    required_permissions = {
        "GET": ["payables.add_expensereport"],
        "POST": ["payables.add_expensereport"],
    }

    class FilterInput(serializers.Serializer):
        status = serializers.ChoiceField(choices=ExpenseReportStatus.choices, required=False)

    @extend_schema(
        parameters=[OpenApiParameter("status", str)], responses=paged(s.ExpenseReportOutput)
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = _reports_for(request).filter(**filters.validated_data).order_by("-created_at", "-pk")
        return _paginate(self, request, qs, s.ExpenseReportOutput)

    @extend_schema(request=s.ExpenseReportInput, responses={201: s.ExpenseReportOutput})
    def post(self, request: Request) -> Response:
        data = s.ExpenseReportInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        report = expense_services.expense_report_create(
            title=v["title"],
            currency=v["currency"],
            lines=[
                expense_services.ExpenseLineInput(
                    spent_on=line["spent_on"],
                    category_id=line["category"],
                    description=line["description"],
                    amount=line["amount"],
                    justification=line["justification"],
                )
                for line in v["lines"]
            ],
            actor=request.user,
        )
        return Response(_report_out(report), status=status.HTTP_201_CREATED)


class ExpenseReportDetailApi(APIView):
    required_permissions = {"GET": ["payables.add_expensereport"]}

    @extend_schema(responses=s.ExpenseReportOutput)
    def get(self, request: Request, report_id: int) -> Response:
        return Response(_report_out(_get(_reports_for(request), report_id, "Expense report")))


class ExpenseReceiptUploadApi(APIView):
    """Multipart ``file``: a receipt for one line of one's own draft report."""

    required_permissions = {"POST": ["payables.add_expensereport"]}
    parser_classes = [MultiPartParser, FormParser]

    class ReceiptFileInput(serializers.Serializer):
        file = serializers.FileField()

    @extend_schema(request=ReceiptFileInput, responses=s.ExpenseReportOutput)
    def post(self, request: Request, line_id: int) -> Response:
        data = self.ReceiptFileInput(data=request.data)
        data.is_valid(raise_exception=True)
        line = expense_services.expense_receipt_attach(
            line_id=line_id, upload=data.validated_data["file"], actor=request.user
        )
        return Response(_report_out(line.report))


class ExpenseReportSubmitApi(APIView):
    required_permissions = {"POST": ["payables.add_expensereport"]}

    @extend_schema(request=None, responses=s.ExpenseReportOutput)
    def post(self, request: Request, report_id: int) -> Response:
        report = expense_services.expense_report_submit(report_id=report_id, actor=request.user)
        return Response(_report_out(report))


class ExpenseReportApproveApi(APIView):
    required_permissions = {"POST": EXPENSE_VIEW}

    @extend_schema(request=s.DecisionInput, responses=s.ExpenseReportOutput)
    def post(self, request: Request, report_id: int) -> Response:
        data = s.DecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        report = expense_services.expense_report_approve(
            report_id=report_id, actor=request.user, **data.validated_data
        )
        return Response(_report_out(report))


class ExpenseReportRejectApi(APIView):
    required_permissions = {"POST": EXPENSE_VIEW}

    @extend_schema(request=s.DecisionInput, responses=s.ExpenseReportOutput)
    def post(self, request: Request, report_id: int) -> Response:
        data = s.DecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        report = expense_services.expense_report_reject(
            report_id=report_id, actor=request.user, comment=data.validated_data["comment"]
        )
        return Response(_report_out(report))


# --- Payment runs ------------------------------------------------------------------------------

RUN_VIEW = ["payables.view_paymentrun"]


def _run_out(run: PaymentRun, *, items: bool = False) -> dict[str, Any]:
    run = PaymentRun.objects.get(pk=run.pk)
    data = _with_approvals(dict(s.PaymentRunOutput(run).data), DocumentKind.PAYMENT_RUN, run.pk)
    if items:
        data["items"] = [
            dict(s.PaymentRunItemOutput(i).data) for i in run.items.order_by("pk")[:1000]
        ]
    return data


class PaymentRunListCreateApi(APIView):
    """GET: payment runs. POST: a draft run of what is due by ``pay_by`` in ``currency``
    (finance_admin, ap_clerk)."""

    required_permissions = {"GET": RUN_VIEW, "POST": ["payables.add_paymentrun"]}

    class FilterInput(serializers.Serializer):
        status = serializers.ChoiceField(choices=PaymentRunStatus.choices, required=False)

    @extend_schema(
        parameters=[OpenApiParameter("status", str)], responses=paged(s.PaymentRunOutput)
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = PaymentRun.objects.filter(**filters.validated_data).order_by("-created_at", "-pk")
        return _paginate(self, request, qs, s.PaymentRunOutput)

    @extend_schema(request=s.PaymentRunInput, responses={201: s.PaymentRunOutput})
    def post(self, request: Request) -> Response:
        data = s.PaymentRunInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        amounts = {}
        for key, value in (v.get("amounts") or {}).items():
            if not str(key).isdigit():
                raise serializers.ValidationError({"amounts": [f"{key!r} is not a bill id."]})
            amounts[int(key)] = value
        run = run_services.payment_run_create(
            currency=v["currency"],
            pay_by=v["pay_by"],
            payment_date=v.get("payment_date"),
            file_format=v.get("file_format"),
            bill_ids=v.get("bills"),
            amounts=amounts,
            include_expenses=v["include_expenses"],
            actor=request.user,
        )
        return Response(_run_out(run, items=True), status=status.HTTP_201_CREATED)


class PaymentRunDetailApi(APIView):
    required_permissions = {"GET": RUN_VIEW}

    @extend_schema(responses=s.PaymentRunOutput)
    def get(self, request: Request, run_id: int) -> Response:
        return Response(_run_out(_get(PaymentRun.objects, run_id, "Payment run"), items=True))


def _run_action(name: str, service: Any, perms: list[str], doc: str) -> type[APIView]:
    class RunActionApi(APIView):
        required_permissions = {"POST": perms}

        @extend_schema(request=None, responses=s.PaymentRunOutput, operation_id=f"run_{name}")
        def post(self, request: Request, run_id: int) -> Response:
            return Response(_run_out(service(run_id=run_id, actor=request.user)))

    RunActionApi.__doc__ = doc
    RunActionApi.__name__ = RunActionApi.__qualname__ = f"PaymentRun{name.title()}Api"
    return RunActionApi


PaymentRunSubmitApi = _run_action(
    "submit", run_services.payment_run_submit, ["payables.change_paymentrun"], "Ask for approval."
)
PaymentRunExportApi = _run_action(
    "export",
    run_services.payment_run_export,
    ["payables.change_paymentrun"],
    "Write the approved run's NACHA or pain.001 file.",
)
PaymentRunConfirmApi = _run_action(
    "confirm",
    run_services.payment_run_confirm,
    ["payables.change_paymentrun"],
    "The bank took the file: mark paid and post Dr AP / Cr bank.",
)
PaymentRunCancelApi = _run_action(
    "cancel",
    run_services.payment_run_cancel,
    ["payables.change_paymentrun"],
    "Cancel a run not yet exported; its bills are free again.",
)


class PaymentRunApproveApi(APIView):
    """One approval (never by the run's creator)."""

    required_permissions = {"POST": RUN_VIEW}

    @extend_schema(request=s.DecisionInput, responses=s.PaymentRunOutput)
    def post(self, request: Request, run_id: int) -> Response:
        data = s.DecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        run = run_services.payment_run_approve(
            run_id=run_id, actor=request.user, **data.validated_data
        )
        return Response(_run_out(run))


class PaymentRunRejectApi(APIView):
    required_permissions = {"POST": RUN_VIEW}

    @extend_schema(request=s.DecisionInput, responses=s.PaymentRunOutput)
    def post(self, request: Request, run_id: int) -> Response:
        data = s.DecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        run = run_services.payment_run_reject(
            run_id=run_id, actor=request.user, comment=data.validated_data["comment"]
        )
        return Response(_run_out(run))


class PaymentRunFileApi(APIView):
    """The exported bank file, as stored (its sha256 is on the run)."""

    required_permissions = {"GET": ["payables.change_paymentrun"]}

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request: Request, run_id: int) -> FileResponse:
        run = _get(PaymentRun.objects, run_id, "Payment run")
        if not run.file:
            raise NotFound(f"Payment run {run.number} has no file yet.")
        return FileResponse(
            run.file.open("rb"),
            as_attachment=True,
            filename=run.file.name.rsplit("/", 1)[-1],
            content_type="application/octet-stream",
        )
