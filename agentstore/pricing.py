"""Automatic pricing of LLM calls with `genai-prices`, at append time and after the fact.

When an `llm_request` or `llm_response` has a `model` and token counts but no
`cost_usd`, the store asks its pricer for the cost before the event is written, and
records the result in the event's metadata:

| outcome | `metadata.cost_usd` | `metadata.extra` |
| --- | --- | --- |
| priced | the cost | `price="genai-prices/<version>"`, `price_model`, `price_provider` |
| model not in the price data | `0.0` | `price="unknown-model"` |
| token counts the price data rejects (cache > input) | unset | `price="invalid-usage"` |
| `genai-prices` missing (a broken install) | unset | `price="unavailable"` |

A `cost_usd` given by the caller is never touched. Token semantics are genai-prices':
`tokens_in` counts every input token, cached ones included (`cache_read_tokens` and
`cache_write_tokens` are parts of it), and `reasoning_tokens` is part of `tokens_out`.

`genai-prices` is a dependency of agentstore (cost budgets are a headline feature), but
it is imported on the first event that needs a price, in a worker thread when a
writable store opens, never by `import agentstore` (it takes ~150 ms to import).

The rule for budgets: a call whose cost is unknown counts $0. So that a cost budget never
passes silently, such a call is flagged (`metadata.extra["price"]` above), counted in
`state.tokens.unpriced`, and the pricer logs a warning (logger `agentstore.pricing`) the
first time each model cannot be priced. See docs/budgets.md.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from agentstore.errors import AgentStoreError, InvalidInputError
from agentstore.events import Event, EventType, Metadata

if TYPE_CHECKING:
    from agentstore.state import Budget
    from agentstore.store import Store

__all__ = [
    "PRICED_TYPES",
    "GenaiPricer",
    "ModelCost",
    "Price",
    "Pricer",
    "RepriceReport",
    "apply_price",
    "is_unpriced",
    "round_usd",
    "warn_if_cost_budget_unpriced",
    "reprice_events",
    "reprice_session",
    "resolve_pricer",
]

logger = logging.getLogger("agentstore.pricing")

PRICED_TYPES = frozenset((EventType.LLM_REQUEST, EventType.LLM_RESPONSE))
"""The event types the store prices."""

# `Price.source` values that mean "no price was found".
_NOT_PRICED = frozenset(("unknown-model", "invalid-usage", "unavailable", "error"))

INSTALL_HINT = "pip install genai-prices (a dependency of agentstore: reinstall agentstore)"

USD_DIGITS = 10
"""Costs in the JSON a user sees are rounded to this many decimals (sums of floats
otherwise show noise such as 0.08999999999999726); 1e-10 dollars is far below any price."""


def round_usd(value: float) -> float:
    """Round a summed cost for display: `round_usd(0.08999999999999726) == 0.09`."""
    return round(value, USD_DIGITS)


def is_unpriced(metadata: Metadata) -> bool:
    """Tell whether an LLM call's cost is unknown: tokens, but no cost or a failed price.

    Such a call counts $0 toward the session's cost and its cost budget.
    """
    if not (metadata.tokens_in or metadata.tokens_out):
        return False
    if metadata.cost_usd is None:
        return True
    if metadata.cost_usd:
        return False
    extra = metadata.extra
    return extra is not None and extra.get("price") in _NOT_PRICED


@dataclass(frozen=True, slots=True)
class Price:
    """What a pricer says a call cost.

    `cost_usd` is None when no price could be computed; `source` is what goes into
    `metadata.extra["price"]` (`"genai-prices/0.2.3"`, `"unknown-model"`, ...).
    """

    cost_usd: float | None
    source: str
    model: str | None = None
    """The model the price data matched (`"gpt-4o"` for `"gpt-4o-2024-08-06"`)."""
    provider: str | None = None
    """The provider whose prices were used."""


Pricer = Callable[[Metadata, datetime | None], Price]
"""Prices a call from its metadata (model, provider, tokens) at a time (None: now)."""


class GenaiPricer:
    """Price calls with pydantic's `genai-prices` database (bundled with the package).

    Thread-safe; `genai-prices` is imported on first use. Raises nothing for unknown
    models or inconsistent token counts: the returned `Price` says what happened.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._module: Any = None
        self._source = "genai-prices"
        self._missing = False
        self._unknown: set[str] = set()  # models already warned about

    @staticmethod
    def available() -> bool:
        """Tell whether `genai-prices` can be imported."""
        import importlib.util

        return importlib.util.find_spec("genai_prices") is not None

    def warm(self) -> None:
        """Import the price data now (blocking), so the first priced append need not.

        Without the package it does nothing: the warning waits for an event that needs
        a price, so users who record no LLM costs never see it.
        """
        if self.available():
            self._load()

    def _load(self) -> Any:
        if self._module is None and not self._missing:
            with self._lock:
                if self._module is None and not self._missing:
                    try:
                        import genai_prices
                    except ImportError:
                        self._missing = True
                        logger.warning(
                            "genai-prices cannot be imported: LLM calls are recorded without "
                            "a cost (metadata.extra['price'] = 'unavailable') and count $0 "
                            "toward cost budgets; %s",
                            INSTALL_HINT,
                        )
                    else:
                        self._source = f"genai-prices/{genai_prices.__version__}"
                        self._module = genai_prices
        return self._module

    def __call__(self, metadata: Metadata, at: datetime | None = None) -> Price:
        """Return the price of the call `metadata` describes."""
        module = self._load()
        if module is None:
            return Price(None, "unavailable")
        usage: dict[str, int] = {}
        for key, value in (
            ("input_tokens", metadata.tokens_in),
            ("output_tokens", metadata.tokens_out),
            ("cache_read_tokens", metadata.cache_read_tokens),
            ("cache_write_tokens", metadata.cache_write_tokens),
            ("output_reasoning_tokens", metadata.reasoning_tokens),
        ):
            if value:
                usage[key] = value
        try:
            calc = module.calc_price(
                module.Usage(**usage),
                model_ref=metadata.model or "",
                provider_id=metadata.provider,
                genai_request_timestamp=at,
            )
        except LookupError:
            self._warn_unknown(metadata.model or "")
            return Price(0.0, "unknown-model")
        except ValueError as exc:
            logger.warning("cannot price %s: %s", metadata.model, exc)
            return Price(None, "invalid-usage")
        total: Decimal = calc.total_price
        return Price(float(total), self._source, calc.model.id, calc.provider.id)

    def _warn_unknown(self, model: str) -> None:
        with self._lock:
            if model in self._unknown:
                return
            self._unknown.add(model)
        logger.warning(
            "no price for model %r in %s: its calls are recorded with cost_usd=0 "
            "(metadata.extra['price'] = 'unknown-model') and count $0 toward cost budgets; "
            "pass cost_usd yourself or open the store with pricing=<your pricer>",
            model,
            self._source,
        )


def warn_if_cost_budget_unpriced(budget: Budget | None, pricer: Pricer | None) -> bool:
    """Log a warning if a cost budget is set where calls cannot be priced; tell if it did.

    For the store to call when a budget is set (`create_session`, `update_session`): a
    cost budget on a store opened with `pricing=False`, or without `genai-prices`, counts
    only the costs given as `cost_usd`, and must say so rather than pass silently.
    """
    if budget is None or budget.max_cost_usd is None:
        return False
    if pricer is None:
        reason = "this store was opened with pricing=False"
    elif isinstance(pricer, GenaiPricer) and not pricer.available():
        reason = "genai-prices cannot be imported"
    else:
        return False
    logger.warning(
        "a cost budget (max_cost_usd=%s) is set, but %s: only calls recorded with cost_usd "
        "count toward it, any other call counts $0",
        budget.max_cost_usd,
        reason,
    )
    return True


def resolve_pricer(pricing: bool | Pricer | None) -> Pricer | None:
    """Turn `open(pricing=...)` into a pricer: True (the default) or None -> genai-prices.

    `False` turns pricing off; a callable is used as it is. `genai-prices` is a
    dependency; should it be missing, calls are flagged `price="unavailable"` and a
    warning is logged once.
    """
    if pricing is None or pricing is True:
        return GenaiPricer()
    if pricing is False:
        return None
    if callable(pricing):
        return pricing
    raise InvalidInputError(
        f"pricing must be True, False or a callable (metadata, at) -> Price, not {pricing!r}"
    )


def needs_price(metadata: Metadata) -> bool:
    """Tell whether a call's metadata has a model and tokens but no cost."""
    return (
        metadata.cost_usd is None
        and metadata.model is not None
        and (metadata.tokens_in is not None or metadata.tokens_out is not None)
    )


def apply_price(type_name: str, metadata: Metadata, pricer: Pricer) -> Metadata:
    """Return `metadata` with its cost and price source filled in, if it needs pricing.

    Called by the store before an event is encoded; the caller's metadata is not
    changed (a priced copy is returned). Metadata that needs no price is returned as is.
    """
    if type_name not in PRICED_TYPES or not needs_price(metadata):
        return metadata
    try:
        price = pricer(metadata, None)
        if not isinstance(price, Price):
            raise TypeError(f"a pricer must return agentstore.Price, not {type(price).__name__}")
        # `model_copy` checks the price: a cost < 0 written could not be read back.
        return metadata.model_copy(update=_priced(metadata, price))
    except Exception as exc:  # a user's pricer must not lose the event
        logger.warning("pricer %r failed on model %s: %r", pricer, metadata.model, exc)
    return metadata.model_copy(update=_priced(metadata, Price(None, "error")))


def _priced(metadata: Metadata, price: Price) -> dict[str, Any]:
    """The fields a price sets: the cost, if any, and the source in `extra`."""
    extra = {**(metadata.extra or {}), "price": price.source}
    if price.model is not None:
        extra["price_model"] = price.model
    if price.provider is not None:
        extra["price_provider"] = price.provider
    update: dict[str, Any] = {"extra": extra}
    if price.cost_usd is not None:
        update["cost_usd"] = price.cost_usd
    return update


# --- repricing --------------------------------------------------------------------------


@dataclass(slots=True)
class ModelCost:
    """Old and new cost of one model's calls in a session."""

    model: str
    events: int = 0
    """LLM events of this model with tokens or a cost (requests and responses)."""
    tokens_in: int = 0
    tokens_out: int = 0
    old_cost_usd: float = 0.0
    new_cost_usd: float = 0.0
    unpriced: int = 0
    """Calls the current price data cannot price (unknown model, bad token counts)."""


@dataclass(slots=True)
class RepriceReport:
    """What a session's LLM calls cost as recorded, and with the current price data."""

    session_id: str
    models: list[ModelCost] = field(default_factory=list)
    source: str = ""
    """The price data used, e.g. `"genai-prices/0.2.3"`."""

    @property
    def old_cost_usd(self) -> float:
        """Total recorded cost."""
        return sum(m.old_cost_usd for m in self.models)

    @property
    def new_cost_usd(self) -> float:
        """Total cost with the current price data."""
        return sum(m.new_cost_usd for m in self.models)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready dict."""
        return {
            "session_id": self.session_id,
            "source": self.source,
            "old_cost_usd": round_usd(self.old_cost_usd),
            "new_cost_usd": round_usd(self.new_cost_usd),
            "models": [
                {
                    "model": m.model,
                    "events": m.events,
                    "tokens_in": m.tokens_in,
                    "tokens_out": m.tokens_out,
                    "old_cost_usd": round_usd(m.old_cost_usd),
                    "new_cost_usd": round_usd(m.new_cost_usd),
                    "unpriced": m.unpriced,
                }
                for m in self.models
            ],
        }


def reprice_events(
    session_id: str, events: Iterable[Event], pricer: Pricer | None = None
) -> RepriceReport:
    """Recompute the cost of every priced LLM event with `pricer` (default: genai-prices).

    Each call is priced at its own timestamp (so historic prices apply) and whether or
    not it had a cost; nothing is written. Raises `AgentStoreError` if no pricer is
    given and `genai-prices` is not installed.
    """
    if pricer is None:
        if not GenaiPricer.available():
            raise AgentStoreError(f"repricing needs genai-prices: {INSTALL_HINT}")
        pricer = GenaiPricer()
    report = RepriceReport(session_id)
    sources: set[str] = set()
    by_model: dict[str, ModelCost] = {}
    for event in events:
        meta = event.metadata
        if event.type not in PRICED_TYPES or meta.model is None:
            continue
        if meta.tokens_in is None and meta.tokens_out is None and meta.cost_usd is None:
            continue
        row = by_model.get(meta.model)
        if row is None:
            row = by_model[meta.model] = ModelCost(meta.model)
        row.events += 1
        row.tokens_in += meta.tokens_in or 0
        row.tokens_out += meta.tokens_out or 0
        row.old_cost_usd += meta.cost_usd or 0.0
        if meta.tokens_in is None and meta.tokens_out is None:
            row.unpriced += 1
            continue
        price = pricer(meta.model_copy(update={"cost_usd": None}), event.timestamp)
        if price.cost_usd is None or price.source in _NOT_PRICED:
            row.unpriced += 1
        else:
            sources.add(price.source)
        row.new_cost_usd += price.cost_usd or 0.0
    report.models = sorted(by_model.values(), key=lambda m: m.model)
    report.source = ", ".join(sorted(sources))
    return report


async def reprice_session(
    store: Store, session_id: str, pricer: Pricer | None = None
) -> RepriceReport:
    """Reprice a stored session's LLM calls with the current price data; write nothing."""
    events = await store.replay(session_id, types=sorted(PRICED_TYPES))
    return reprice_events(session_id, events, pricer)
