"""``/api/reconciliation/``: bank accounts, statement import, statements with their lines."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.pagination import Pagination, paged
from core.exceptions import NotFound
from reconciliation.api.serializers import (
    BankAccountInput,
    BankAccountOutput,
    StatementDetailOutput,
    StatementImportInput,
    StatementImportOutput,
    StatementOutput,
    amount_out,
)
from reconciliation.exceptions import UploadTooLarge
from reconciliation.importers.common import MAX_FILE_BYTES
from reconciliation.models import Statement
from reconciliation.selectors import bank_account_list, statement_get, statement_list
from reconciliation.services import bank_account_create, statement_import
from reconciliation.services_matching import reconciliation_run_start

READ = [
    "reconciliation.view_bankaccount",
    "reconciliation.view_statement",
    "reconciliation.view_statementline",
]
# Room for the multipart envelope and the other fields around the file.
MAX_REQUEST_BYTES = MAX_FILE_BYTES + 64 * 1024


class BankAccountListCreateApi(APIView):
    """Roles: read finance_admin, controller, ar_clerk, ap_clerk, auditor; create
    finance_admin, ar_clerk, ap_clerk. Account numbers and IBANs go out masked only."""

    required_permissions = {
        "GET": ["reconciliation.view_bankaccount"],
        "POST": ["reconciliation.add_bankaccount"],
    }

    @extend_schema(responses=paged(BankAccountOutput))
    def get(self, request: Request) -> Response:
        paginator = Pagination()
        page = paginator.paginate_queryset(bank_account_list(), request, view=self) or []
        return paginator.get_paginated_response(BankAccountOutput(page, many=True).data)

    @extend_schema(request=BankAccountInput, responses={201: BankAccountOutput})
    def post(self, request: Request) -> Response:
        data = BankAccountInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        account = bank_account_create(
            actor=request.user,
            name=v["name"],
            currency=v["currency"],
            account_number=v["account_number"],
            iban=v["iban"],
            bic=v["bic"],
            bank_name=v["bank_name"],
            ledger_account_id=v.get("ledger_account"),
        )
        account = bank_account_list().get(pk=account.pk)
        return Response(BankAccountOutput(account).data, status=status.HTTP_201_CREATED)


def _content_length(request: Request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class StatementListImportApi(APIView):
    """POST a statement file (multipart ``file``, ``bank_account``, optional ``format``):
    201 with the statement, 200 with the existing one for a file imported before, 400
    naming the line or element for a malformed file, 413 for an upload over the limit.
    Roles: import finance_admin, ar_clerk, ap_clerk, integration; list finance_admin,
    controller, ar_clerk, ap_clerk, auditor."""

    required_permissions = {"GET": READ, "POST": ["reconciliation.import_statement"]}
    parser_classes = [MultiPartParser]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Refuse an oversized upload before anything (authentication's CSRF check included)
        # reads the body (RELIABILITY.md B7).
        if request.method == "POST" and _content_length(request) > MAX_REQUEST_BYTES:
            raise UploadTooLarge(f"The upload is larger than {MAX_FILE_BYTES} bytes.")
        super().initial(request, *args, **kwargs)

    @extend_schema(
        parameters=[OpenApiParameter("bank_account", int), OpenApiParameter("format", str)],
        responses=paged(StatementOutput),
    )
    def get(self, request: Request) -> Response:
        bank_account = request.query_params.get("bank_account")
        if bank_account is not None and not bank_account.isdigit():
            raise serializers.ValidationError({"bank_account": ["An id."]})
        qs = statement_list(
            bank_account_id=int(bank_account) if bank_account else None,
            format=request.query_params.get("format") or None,
        )
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        return paginator.get_paginated_response(StatementOutput(page, many=True).data)

    @extend_schema(
        request={"multipart/form-data": StatementImportInput},
        responses={201: StatementImportOutput, 200: StatementImportOutput},
    )
    def post(self, request: Request) -> Response:
        data = StatementImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        upload = v["file"]
        if upload.size is not None and upload.size > MAX_FILE_BYTES:
            raise UploadTooLarge(f"The file has {upload.size} bytes; at most {MAX_FILE_BYTES}.")
        content = upload.read(MAX_FILE_BYTES + 1)
        if len(content) > MAX_FILE_BYTES:
            raise UploadTooLarge(f"The file is larger than {MAX_FILE_BYTES} bytes.")
        outcome = statement_import(
            actor=request.user,
            bank_account_id=v["bank_account"],
            data=content,
            filename=upload.name or "",
            format=v.get("format"),
            csv_mapping=v.get("csv_mapping"),
        )
        if outcome.created:
            # New lines: a reconciliation run for the importer, queued after commit.
            reconciliation_run_start(
                actor=request.user,
                bank_account_id=v["bank_account"],
                authorized_by_caller=True,
            )
        ids = [s.pk for s in outcome.statements]
        statements = list(statement_list().filter(pk__in=ids).order_by("file_position", "pk"))
        first, last = statements[0], statements[-1]
        body: dict[str, Any] = {
            "id": first.pk,
            "format": first.format,
            "transactions": sum(s.transactions for s in statements),
            "opening_balance": amount_out(first.opening_balance, first.currency),
            "closing_balance": amount_out(last.closing_balance, last.currency),
            "currency": first.currency,
            "created": outcome.created,
            "statements": StatementOutput(statements, many=True).data,
        }
        return Response(
            body,
            status=status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK,
        )


class StatementDetailApi(APIView):
    """One statement with its lines. Roles: finance_admin, controller, ar_clerk, ap_clerk,
    auditor."""

    required_permissions = {"GET": READ}

    @extend_schema(responses=StatementDetailOutput)
    def get(self, request: Request, statement_id: int) -> Response:
        try:
            statement = statement_get(statement_id=statement_id)
        except Statement.DoesNotExist:
            raise NotFound(f"No statement {statement_id}.") from None
        return Response(StatementDetailOutput(statement).data)
