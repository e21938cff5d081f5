"""The OpenAPI schema's operations: drf-spectacular's, with paginated lists named as lists."""

from __future__ import annotations

import re

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema

# Set on the serializers ``core.api.pagination.paged`` returns.
PAGED_LIST = "paged_list"


class AutoSchema(SpectacularAutoSchema):
    def get_operation_id(self) -> str:
        """A GET answering a page (``paged``) is ``..._list``, as a list view's is; without
        this its id would be ``..._retrieve``, the same as its detail operation's."""
        operation_id = super().get_operation_id()
        if self.method == "GET" and getattr(self.get_response_serializers(), PAGED_LIST, False):
            return re.sub(r"_retrieve$", "_list", operation_id)
        return operation_id
