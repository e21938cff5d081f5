"""The approvers' screens at /approvals/: an inbox of what waits for the signed-in user and a
page per document to approve or reject it. Server-rendered; every write goes through the
payables services."""
