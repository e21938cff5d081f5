"""CSV for list endpoints that offer an export (``?format=csv``), formulas neutralised."""

from __future__ import annotations

import io
from typing import Any

from rest_framework.renderers import BaseRenderer

from core.spreadsheet import csv_writer


class CSVRenderer(BaseRenderer):
    """Renders ``{"columns": [...], "rows": [[...], ...]}`` prepared by the view."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        out = io.StringIO()
        writer = csv_writer(out)
        if isinstance(data, dict) and "columns" in data:
            writer.writerow(data["columns"])
            writer.writerows(data["rows"])
        elif isinstance(data, dict):
            # An error body: keep it readable as CSV.
            writer.writerow(["code", "message"])
            writer.writerow([data.get("code", ""), data.get("message", "")])
        return out.getvalue().encode(self.charset)
