"""Safe XML for bank files (RELIABILITY.md B7): no DTD, no entities, no external references,
a size limit, and every parser failure turned into StatementFormatError."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from reconciliation.importers.common import MAX_FILE_BYTES
from reconciliation.importers.errors import StatementFormatError

MAX_ELEMENTS = 500_000


def parse_xml(data: bytes) -> ET.Element:
    if len(data) > MAX_FILE_BYTES:
        raise StatementFormatError(
            f"The file has {len(data)} bytes; at most {MAX_FILE_BYTES} are accepted.",
            code="too_large",
        )
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise StatementFormatError(
            "XML with a DTD, entities or external references is refused "
            f"({exc.__class__.__name__}).",
            code="unsafe_xml",
        ) from None
    except ET.ParseError as exc:
        line, column = getattr(exc, "position", (None, None))
        raise StatementFormatError(
            f"not well-formed XML (column {column}): {exc}", code="bad_xml", line=line
        ) from None
    except (ValueError, TypeError, LookupError, RecursionError) as exc:
        raise StatementFormatError(f"unreadable XML: {exc}", code="bad_xml") from None
    for count, _ in enumerate(root.iter(), start=1):
        if count > MAX_ELEMENTS:
            raise StatementFormatError(f"more than {MAX_ELEMENTS} XML elements.", code="too_large")
    return root


def local(tag: object) -> str:
    text = tag if isinstance(tag, str) else ""
    return text.rsplit("}", 1)[-1]


def children(element: ET.Element, name: str) -> Iterator[ET.Element]:
    for child in element:
        if local(child.tag) == name:
            yield child


def child(element: ET.Element | None, path: str) -> ET.Element | None:
    """The first element at ``A/B/C`` (local names, namespaces ignored)."""
    current = element
    for name in path.split("/"):
        if current is None:
            return None
        current = next(children(current, name), None)
    return current


def text(element: ET.Element | None, path: str = "") -> str:
    found = child(element, path) if path else element
    if found is None or found.text is None:
        return ""
    return " ".join(found.text.split())
