"""What the flow's modules use of the Assistant: the state that requests share.

A Protocol, so that step.py, chains.py, retrieval.py and the others name
exactly what they touch without importing the facade that calls them: no
import cycle, not even one for type checkers. The Assistant is the one
object that has these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from assistant.accounting.costs import Prices
    from assistant.accounting.ledger import Ledger
    from assistant.accounting.limits import RateLimiter
    from assistant.catalog.entries import Catalog
    from assistant.flow.pool import Pool
    from assistant.knowledge.rag import Store
    from assistant.routing.router import Router
    from assistant.settings import Settings


class Context(Protocol):
    settings: Settings  # read on each use: a test or an operator may replace it
    catalog: Catalog
    pool: Pool
    ledger: Ledger
    prices: Prices
    router: Router
    limiter: RateLimiter
    # The router's question vectors, reused once by the retrieval step.
    query_vectors: dict[str, list[float]]
    # Cold loads of the embedder paid while routing a text: charged to its request.
    routing_loads: dict[str, float]

    @property
    def store(self) -> Store: ...
