"""What a model answer costs: the price table per model and the one function that turns token
counts into USD."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from storage.tokens import TokenUsage

# USD per million tokens: (input, output, cache write, cache read).
# A model missing from the table is priced as the default row.
MODEL_PRICES_PER_MTOK: dict[str, tuple[Decimal, Decimal, Decimal, Decimal]] = {
    "default": (Decimal("3"), Decimal("15"), Decimal("3.75"), Decimal("0.30")),
    "claude-sonnet-5-5": (Decimal("3"), Decimal("15"), Decimal("3.75"), Decimal("0.30")),
    "claude-sonnet-5": (Decimal("3"), Decimal("15"), Decimal("3.75"), Decimal("0.30")),
    "claude-sonnet-4-6": (Decimal("3"), Decimal("15"), Decimal("3.75"), Decimal("0.30")),
    "claude-haiku-5-5": (Decimal("1"), Decimal("5"), Decimal("1.25"), Decimal("0.10")),
    "claude-haiku-4-5": (Decimal("1"), Decimal("5"), Decimal("1.25"), Decimal("0.10")),
    "claude-opus-5-5": (Decimal("5"), Decimal("25"), Decimal("6.25"), Decimal("0.50")),
}
PER_MTOK = Decimal(1_000_000)


@dataclass(frozen=True)
class Price:
    input: Decimal
    output: Decimal
    cache_write: Decimal
    cache_read: Decimal


def price_for(model: str) -> Price:
    return Price(*MODEL_PRICES_PER_MTOK.get(model, MODEL_PRICES_PER_MTOK["default"]))


def priced(model: str, *, input: int, output: int, cache_write: int, cache_read: int) -> TokenUsage:
    """The tokens of one answer with what they cost at `model`'s prices."""
    price = price_for(model)
    cost = (
        input * price.input
        + output * price.output
        + cache_write * price.cache_write
        + cache_read * price.cache_read
    ) / PER_MTOK
    return TokenUsage(
        input=input,
        output=output,
        cache_write=cache_write,
        cache_read=cache_read,
        cost_usd=cost,
    )
