"""The OpenAPI schema's operations: drf-spectacular's, with paginated lists named as lists, and
the answers every operation shares documented in one place.

The errors come from one exception handler (``core.api.errors``) and a few middlewares
(throttling, idempotency), not from each view, so they are documented here from what the
operation is (issue 15 hole 8), and an endpoint added later is covered without a line of its
own:

- 401 and 403 on every operation that needs a credential (all but ``PUBLIC`` ones);
- 429 with ``Retry-After`` on every operation (the address throttle counts everyone);
- 404 on an operation with a path parameter (no such object), a ``format`` or ``page``
  parameter (DRF answers an unknown format or a page past the end 404), and on every write: a
  body names other objects by id;
- 400 on an operation that reads a body or query parameters, and on every POST (a malformed
  ``Idempotency-Key``);
- 415 on an operation that reads a body (another media type);
- 409 on every write (a domain conflict: the state forbids it); on POST also a request with
  the same ``Idempotency-Key`` still running;
- 413 and 422 on every POST (``core.idempotency``: a body too large to compare, a key reused
  with another body).

A view documents what only it answers (201, 202, 204, a file, 402, 502, 503) with
``extend_schema``; an error code it lists without a body gets the error body here.
"""

from __future__ import annotations

import re
from copy import deepcopy
from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from core.api.fields import AMOUNT_PATTERN, AmountField
from core.api.permissions import PUBLIC
from core.idempotency import HEADER as IDEMPOTENCY_HEADER
from core.idempotency import MAX_KEY_LENGTH, NOT_STORED

# Set on the serializers ``core.api.pagination.paged`` returns.
PAGED_LIST = "paged_list"

# Text without a NUL character (DRF's ProhibitNullCharactersValidator, on every CharField).
NO_NUL = "^[^\\u0000]*$"

# The payment processor an operation needs has no credentials here: 503, whichever app asks.
NOT_CONFIGURED = OpenApiResponse(
    description='The processor is not configured: {"code": "processor_not_configured"}'
)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

ERROR_DESCRIPTIONS = {
    "400": "Invalid input: `errors` maps each field to its messages.",
    "401": "No valid credential.",
    "403": "The credential's role does not allow this operation, or its second factor is "
    "not verified.",
    "404": "No such object, or an object the request names does not exist.",
    "409": "The current state forbids it (a domain conflict, with its stable `code`), or a "
    "request with the same Idempotency-Key is still running.",
    "413": "The body is too large.",
    "415": "The body's media type is not accepted.",
    "422": "This Idempotency-Key was already used with another request body.",
    "429": "Too many requests: retry after `Retry-After` seconds.",
}

RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer", "minimum": 0},
        "required": True,
        "description": "Seconds to wait before retrying.",
    }
}
REPLAYED = {
    "Idempotent-Replayed": {
        "schema": {"type": "string", "enum": ["true"]},
        "description": "Present when this is the stored answer to an earlier request with "
        "the same Idempotency-Key.",
    }
}
IDEMPOTENCY_PARAMETER = {
    "in": "header",
    "name": IDEMPOTENCY_HEADER,
    "required": False,
    "description": (
        "Makes a retry safe: the same key with the same body replays the first answer "
        "(marked `Idempotent-Replayed: true`), with another body answers 422; keys are "
        "scoped by credential and endpoint."
    ),
    # Printable, and no blank at either end (HTTP strips it, leaving another key).
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": r"^[!-~]([ -~]*[!-~])?$",
    },
}


class ErrorSerializer(serializers.Serializer):
    # What core.api.errors and the middlewares answer; its docstring is the description.
    """The one error body of the API, for every 4xx and 5xx."""

    code = serializers.CharField(help_text="Stable machine code, e.g. `invalid`, `conflict`.")
    message = serializers.CharField(help_text="For people.")
    # The metaclass takes declared fields out of the class: Serializer.errors stays a property.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.JSONField(),
        help_text="Field name (`lines[2].unit_price`, `non_field_errors`) to its messages; "
        "nested for nested inputs. Empty when no field is at fault.",
    )
    details = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        help_text="Facts about the refusal: figures and dates as text, lists and objects as "
        "they are (a month-end close's red items).",
    )

    class Meta:
        ref_name = "Error"


class AutoSchema(SpectacularAutoSchema):
    def get_operation_id(self) -> str:
        """A GET answering a page (``paged``) is ``..._list``, as a list view's is; without
        this its id would be ``..._retrieve``, the same as its detail operation's."""
        operation_id = super().get_operation_id()
        if self.method == "GET" and getattr(self.get_response_serializers(), PAGED_LIST, False):
            return re.sub(r"_retrieve$", "_list", operation_id)
        return operation_id

    def _map_serializer_field(
        self, field: Any, direction: str, bypass_extensions: bool = False
    ) -> dict[str, Any]:
        """What a field refuses, the schema says, so that a client (or schemathesis) reading
        it does not send what is bound to be refused:

        - a list that refuses to be empty (``allow_empty=False``): ``minItems: 1``;
        - an amount that refuses to be negative: its pattern has no minus;
        - free text: DRF refuses a NUL character in every CharField ("Null characters are not
          allowed."), so its pattern excludes it.
        """
        schema: dict[str, Any] = super()._map_serializer_field(field, direction, bypass_extensions)
        lists = (serializers.ListField, serializers.ListSerializer)
        if isinstance(field, lists) and not field.allow_empty and schema.get("type") == "array":
            schema.setdefault("minItems", 1)
        if isinstance(field, AmountField) and not field.allow_negative:
            schema["pattern"] = schema.get("pattern", AMOUNT_PATTERN.pattern).replace("^-?", "^")
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and schema.get("type") == "string"
            and not {"pattern", "format", "enum"} & schema.keys()
            and not any(isinstance(v, RegexValidator) for v in field.validators)
        ):
            schema["pattern"] = NO_NUL
        return schema

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation: dict[str, Any] | None = super().get_operation(*args, **kwargs)
        if operation is None or not self.path.startswith("/api/"):
            return operation
        if self.method == "POST":
            operation.setdefault("parameters", []).append(deepcopy(IDEMPOTENCY_PARAMETER))
        responses: dict[str, Any] = operation["responses"]
        error = self._error_response_content()
        for code in self._error_codes(operation):
            responses.setdefault(code, {"description": ERROR_DESCRIPTIONS[code]})
        for code, response in responses.items():
            if code >= "400" and not response.get("content"):
                response["content"] = deepcopy(error)
                response["description"] = response.get("description") or ERROR_DESCRIPTIONS.get(
                    code, "Refused."
                )
            if code == "429":
                response.setdefault("headers", {}).update(deepcopy(RETRY_AFTER))
            if self.method == "POST" and code < "500" and int(code) not in NOT_STORED:
                response.setdefault("headers", {}).update(deepcopy(REPLAYED))
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _error_codes(self, operation: dict[str, Any]) -> list[str]:
        """The error statuses this operation can answer, from what it is (module docstring)."""
        parameters = operation.get("parameters", [])
        in_path = any(p.get("in") == "path" for p in parameters)
        # A path segment with a shape of its own (a month, YYYY-MM) is read by the view: 400.
        shaped_path = any(
            p.get("in") == "path" and p.get("schema", {}).get("pattern") for p in parameters
        )
        in_query = [p["name"] for p in parameters if p.get("in") == "query"]
        has_body = "requestBody" in operation
        write = self.method in WRITE_METHODS
        codes = {"429"}
        if getattr(self.view, "required_permissions", None) != PUBLIC:
            codes |= {"401", "403"}
        if in_path or {"format", "page"} & set(in_query) or write:
            codes.add("404")
        if has_body or in_query or shaped_path or self.method == "POST":
            codes.add("400")
        if has_body:
            codes.add("415")
        if write:
            codes.add("409")
        if self.method == "POST":
            codes |= {"413", "422"}
        return sorted(codes)

    def _error_response_content(self) -> dict[str, Any]:
        component = self.resolve_serializer(ErrorSerializer, "response")
        media_types = list(dict.fromkeys(["application/json", *self.map_renderers("media_type")]))
        return {media_type: {"schema": component.ref} for media_type in media_types}
