"""What model calls cost: tokens by kind and USD. The one value type for it, from the writer
to the ledger, the status views and `coldcopy usage`."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class TokenUsage:
    """Tokens by kind and what they cost in USD: one model answer, or a period's total."""

    input: int = 0
    output: int = 0
    cache_write: int = 0
    cache_read: int = 0
    cost_usd: Decimal = Decimal(0)

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_write + self.cache_read

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            input=self.input + other.input,
            output=self.output + other.output,
            cache_write=self.cache_write + other.cache_write,
            cache_read=self.cache_read + other.cache_read,
            cost_usd=self.cost_usd + other.cost_usd,
        )

    def columns(self) -> dict:
        """The generation columns that record it."""
        return {
            "input_tokens": self.input,
            "output_tokens": self.output,
            "cache_creation_tokens": self.cache_write,
            "cache_read_tokens": self.cache_read,
            "cost_usd": self.cost_usd,
        }

    def as_dict(self) -> dict[str, object]:
        """For JSON output: the same names as the columns, the cost as an exact string."""
        return {**self.columns(), "cost_usd": str(self.cost_usd)}
