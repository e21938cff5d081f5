"""The one error every parser raises (RELIABILITY.md B6): a stable code and a message that
names the line, row or XML element so a person can find the problem in the file."""

from __future__ import annotations


class StatementFormatError(Exception):
    """The file cannot be imported. Nothing else ever escapes ``parse_statement_file``."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "malformed",
        line: int | None = None,
        element: str | None = None,
    ) -> None:
        self.code = code
        self.line = line
        self.element = element
        where = ""
        if line is not None:
            where = f"line {line}: "
        elif element:
            where = f"element <{element}>: "
        self.message = f"{where}{message}"
        super().__init__(self.message)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (
            _rebuild,
            (self.message, self.code, self.line, self.element),
        )


def _rebuild(message: str, code: str, line: int | None, element: str | None) -> Exception:
    err = StatementFormatError.__new__(StatementFormatError)
    err.code, err.line, err.element, err.message = code, line, element, message
    Exception.__init__(err, message)
    return err
