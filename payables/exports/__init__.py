"""Payment files for payment runs: NACHA ACH (US) and ISO 20022 pain.001 credit transfers.

Pure functions over frozen values, no models and no database:

- ``Originator`` (our company and bank account) and ``CreditTransfer`` (one payment, Decimal
  amount) are the input of both writers;
- ``nacha_file(*, originator, transfers, effective_date, created_at, file_id_modifier="A",
  entry_description="VENDOR PAY", sec_code="CCD") -> bytes`` and
  ``nacha_validate(data) -> NachaSummary`` (see ``payables.exports.nacha``);
- ``pain001_file(*, originator, transfers, execution_date, message_id, created_at) -> bytes``
  (pain.001.001.03) and ``pain001_validate(data) -> Pain001Summary`` (see
  ``payables.exports.pain001``).

Writers refuse input they cannot write exactly with ``PaymentExportError`` (``problems`` lists
every bad transfer). Validators raise ``NachaFormatError`` / ``Pain001FormatError``
(``PaymentFileFormatError``): the message names the line, record or element of the first
problems, ``problems`` holds them all and, for NACHA, ``summary`` what could still be read.
``Originator.bank_name`` was added to the agreed interface: the NACHA file header names the bank.
"""

from payables.exports.common import (
    CreditTransfer,
    FormatProblem,
    Originator,
    PaymentExportError,
    PaymentFileFormatError,
)
from payables.exports.nacha import (
    NachaBatch,
    NachaEntry,
    NachaFormatError,
    NachaSummary,
    nacha_file,
    nacha_validate,
)
from payables.exports.pain001 import (
    Pain001FormatError,
    Pain001PaymentInfo,
    Pain001Summary,
    Pain001Transaction,
    pain001_file,
    pain001_validate,
)

__all__ = [
    "CreditTransfer",
    "FormatProblem",
    "NachaBatch",
    "NachaEntry",
    "NachaFormatError",
    "NachaSummary",
    "Originator",
    "Pain001FormatError",
    "Pain001PaymentInfo",
    "Pain001Summary",
    "Pain001Transaction",
    "PaymentExportError",
    "PaymentFileFormatError",
    "nacha_file",
    "nacha_validate",
    "pain001_file",
    "pain001_validate",
]
