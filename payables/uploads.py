"""Uploaded documents (W-9s, receipts, bill scans): type by content, size, safe names (B7).

The declared content type and the file name are not trusted: the first bytes decide, and
the stored name is the content's sha256, so no path from the upload reaches the storage.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile

from payables.exceptions import UploadRefused

# Magic numbers of the accepted types.
SIGNATURES = (
    (b"%PDF-", "application/pdf", ".pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
)


def max_upload_bytes() -> int:
    return int(getattr(settings, "PAYABLES_MAX_UPLOAD_BYTES", 10 * 1024 * 1024))


@dataclass(frozen=True)
class CheckedUpload:
    content: ContentFile
    original_name: str
    content_type: str
    extension: str
    size: int
    sha256: str


def upload_check(upload: Any) -> CheckedUpload:
    """Read at most the size limit plus one byte; refuse anything too large, empty, or not
    a PDF, PNG or JPEG by its content."""
    limit = max_upload_bytes()
    declared = getattr(upload, "size", None)
    if declared is not None and declared > limit:
        raise UploadRefused(
            f"The file is larger than {limit // (1024 * 1024)} MB.", code="upload_too_large"
        )
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise UploadRefused(
            f"The file is larger than {limit // (1024 * 1024)} MB.", code="upload_too_large"
        )
    if not data:
        raise UploadRefused("The file is empty.", code="upload_empty")
    found = next((s for s in SIGNATURES if data.startswith(s[0])), None)
    if found is None:
        raise UploadRefused(
            "Only PDF, PNG and JPEG files are accepted (checked by content, not by name).",
            code="upload_type_refused",
        )
    _, content_type, extension = found
    name = str(getattr(upload, "name", "") or "upload")
    # Keep only the last path component for display; never used as a storage path.
    original = name.replace("\\", "/").rsplit("/", 1)[-1][:200] or "upload"
    digest = hashlib.sha256(data).hexdigest()
    return CheckedUpload(
        content=ContentFile(data, name=f"{digest}{extension}"),
        original_name=original,
        content_type=content_type,
        extension=extension,
        size=len(data),
        sha256=digest,
    )
