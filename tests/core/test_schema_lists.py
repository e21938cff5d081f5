"""The OpenAPI schema tells clients what list operations answer (issue 15 hole 8): every GET
that answers a page (``{count, next, previous, results}``) documents that object, not a bare
array, and every documented array is answered as one."""

from __future__ import annotations

import re

import pytest
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db
DATE_NAMES = r"(as_of|compare_as_of|since|until|from|to|date_from|date_to|.*_date|.*_(from|to))"
DATE_FORMATS = ("date", "date-time")


def documented_200(operation: dict, components: dict) -> dict:
    content = operation.get("responses", {}).get("200", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    ref = schema.get("$ref")
    if ref:
        schema = components[ref.rsplit("/", 1)[-1]]
    return schema


def test_every_list_operation_documents_what_it_answers(client_for) -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    client = client_for("finance_admin")
    wrong = []
    for path, operations in schema["paths"].items():
        get = operations.get("get")
        if not get or "{" in path:
            continue
        documented = documented_200(get, components)
        if not documented:
            continue
        answer = client.get(path)
        if answer.status_code != 200 or "json" not in answer.get("Content-Type", ""):
            continue
        body = answer.json()
        is_page = isinstance(body, dict) and {"count", "results"} <= set(body)
        says_page = documented.get("type") == "object" and "results" in documented.get(
            "properties", {}
        )
        says_array = documented.get("type") == "array"
        if (is_page and not says_page) or (isinstance(body, list) and not says_array):
            wrong.append(path)
    assert not wrong, "\n".join(wrong)


def test_date_parameters_say_they_are_dates() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    undated = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                name = parameter.get("name", "")
                is_date = re.fullmatch(DATE_NAMES, name) and "pattern" not in parameter["schema"]
                if is_date and parameter.get("schema", {}).get("format") not in DATE_FORMATS:
                    undated.append(f"{method.upper()} {path} {name}")
    assert not undated, "\n".join(undated)


BAD_VALUES = {"integer": "null", "date": "not-a-date", "date-time": "yesterday"}


def test_a_filter_value_that_is_not_what_the_schema_says_is_refused(client_for) -> None:
    """``?customer=null`` was silently ignored (the whole list answered): every query
    parameter documented as an id, a date, or one of a set refuses anything else with 400."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    client = client_for("finance_admin")
    ignored = []
    for path, operations in schema["paths"].items():
        get = operations.get("get")
        if not get or "{" in path:
            continue
        for parameter in get.get("parameters", []):
            # (an unknown ?format= is DRF's content negotiation: 404, as DRF documents it)
            if parameter.get("in") != "query" or parameter["name"] in (
                "page",
                "page_size",
                "format",
            ):
                continue
            kind = parameter.get("schema", {})
            if kind.get("enum"):
                bad = "no-such-value"
            else:
                bad = BAD_VALUES.get(kind.get("format") or kind.get("type") or "")
            if bad is None:
                continue
            answer = client.get(path, {parameter["name"]: bad})
            if answer.status_code != 400:
                ignored.append(f"{path}?{parameter['name']}={bad} -> {answer.status_code}")
    assert not ignored, "\n".join(ignored)
