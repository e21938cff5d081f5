"""API of reconciliation exceptions."""

from __future__ import annotations

from typing import Any

urlpatterns: list[Any] = []
