"""The input of every payment file writer, and the errors writers and validators raise.

Pure values: no models and no database, so a payment run can snapshot its approved payments
into these and render the same bytes again later.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from stdnum import bic, iban
from stdnum.us import rtn

from core.exceptions import DomainError


@dataclass(frozen=True)
class Originator:
    """Our company and the account the money leaves from."""

    name: str
    # NACHA Company Identification, 10 characters: "1" + EIN is the usual form.
    company_id: str
    # The ODFI (our bank) ABA routing number; NACHA files need it.
    routing_number: str = ""
    account_number: str = ""
    iban: str = ""
    bic: str = ""
    country: str = "US"
    # Name of our bank as it appears in the NACHA file header (optional, may stay blank).
    bank_name: str = ""


@dataclass(frozen=True)
class CreditTransfer:
    """One payment to a vendor (or to an employee for expenses)."""

    # Unique per payment, at most 35 printable ASCII characters; what the bank reports back.
    end_to_end_id: str
    payee_name: str
    # Positive, in `currency`, with no more decimals than the currency's minor unit.
    amount: Decimal
    currency: str
    routing_number: str = ""
    account_number: str = ""
    account_type: str = "checking"
    iban: str = ""
    bic: str = ""
    # Free text for the payee, e.g. the bill numbers paid.
    remittance: str = ""


class PaymentExportError(DomainError):
    """The payments cannot be written to a file as given (bad account, currency, amount)."""

    code = "payment_export_refused"


@dataclass(frozen=True)
class FormatProblem:
    """One thing wrong in a file: where (a line, a record or an element path) and what."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class PaymentFileFormatError(DomainError):
    """A payment file breaks its format. The message names the first place; all are listed."""

    code = "payment_file_invalid"

    def __init__(
        self,
        problems: list[FormatProblem] | tuple[FormatProblem, ...],
        *,
        summary: Any = None,
    ) -> None:
        problems = tuple(problems)
        shown = "; ".join(str(problem) for problem in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        super().__init__(f"{shown}{more}")
        self.problems = problems
        # What could still be read from the file despite the problems (or None).
        self.summary = summary


@lru_cache(maxsize=65536)
def aba_routing_valid(number: str) -> bool:
    """Nine digits whose ABA check digit is right (3-7-1 weights, sum divisible by 10)."""
    return len(number) == 9 and number.isdigit() and rtn.is_valid(number)


@lru_cache(maxsize=65536)
def iban_valid(number: str) -> bool:
    """A compact IBAN with the right length, BBAN format and mod-97 check (python-stdnum).

    Cached: stdnum's check costs about 0.1 ms and a payment run pays the same vendors often.
    """
    return iban.is_valid(number)


@lru_cache(maxsize=65536)
def bic_valid(number: str) -> bool:
    return bic.is_valid(number)


def is_printable_ascii(value: str) -> bool:
    return value.isascii() and value.isprintable()
