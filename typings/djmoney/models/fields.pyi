# Partial stub, only what the django-stubs plugin needs: a MoneyField is set from a Money as well
# as from a plain amount (the currency then comes from its own column). Reads are Any, as without
# the stub: an instance attribute is a Money, but values()/values_list() return the Decimal.
import decimal
from typing import Any, TypeVar

from django.db.models import DecimalField
from django.db.models.expressions import Combinable
from moneyed import Money

_ST = TypeVar("_ST", contravariant=True)
_GT = TypeVar("_GT", covariant=True)

class MoneyField(DecimalField[_ST, _GT]):
    _pyi_private_set_type: Money | str | float | decimal.Decimal | Combinable  # type: ignore[assignment]  # a Money too
    _pyi_private_get_type: Any
    def __init__(self, *args: Any, **kwargs: Any) -> None: ...

def __getattr__(name: str) -> Any: ...
