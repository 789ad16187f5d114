"""The Assistant: the one object the UI, the CLI and the API call.

So a request is checked, routed, timed and recorded the same way wherever
it comes from. It holds what requests share (settings, catalog, pool,
ledger, router, store, chats) and hands each request to the flow's modules:
chains.py (what one request becomes), step.py (lease → run → price →
ledger), retrieval.py, ingest.py. They are functions of this shared state,
which context.py names as a Protocol, so none of them imports this module.
Domain errors become an Outcome with a message there, once; callers only
render it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from assistant.accounting.costs import PRICES_FILE, Prices
from assistant.accounting.ledger import Ledger, open_ledger
from assistant.accounting.limits import RateLimiter
from assistant.catalog.backends import build_adapter
from assistant.catalog.entries import Catalog
from assistant.chats.conversations import Chats, Template, load_templates
from assistant.database import Database
from assistant.evaluation import choices
from assistant.evaluation.votes import Votes
from assistant.flow import chains, ingest
from assistant.flow.defaults import BENCH_TEXT_FILE, has_cuda, measured_text_default
from assistant.flow.grounded import grounded_model
from assistant.flow.outcome import Outcome
from assistant.flow.pool import Loading, Pool
from assistant.flow.requests import checked
from assistant.flow.retrieval import document_match
from assistant.knowledge.rag import ONCE_PREFIX, ONCE_TTL_S, Store
from assistant.knowledge.registry import open_registry
from assistant.routing.router import Router
from assistant.settings import Settings
from models.base import BadInput, Progress, Request


class Assistant:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        pool: Pool,
        ledger: Ledger,
        prices: Prices | None = None,
    ):
        self.settings = settings
        self.catalog = catalog
        self.pool = pool
        self.ledger = ledger
        self.prices = prices or Prices.load(PRICES_FILE)
        self.warnings: list[str] = []  # said at start, shown at the top of the UI
        preferred = {"text": settings.text_model} if settings.text_model else {}
        image = settings.image_model or ("sd-turbo" if has_cuda(settings.device) else None)
        if image:
            preferred.update(image_generation=image, image_edit=image)
        self.router = Router(
            catalog,
            preferred,
            documents=partial(document_match, self),
            grounded=partial(grounded_model, self),
            weights_dir=settings.weights_dir,
        )
        choices.apply(self)  # what a person chose after an eval outlives restarts
        self._store: Store | None = None
        self._chats: Chats | None = None
        # The router's query vectors, reused once by the retrieval step.
        self.query_vectors: dict[str, list[float]] = {}
        # Cold loads of the embedder paid while routing a text: charged to its request.
        self.routing_loads: dict[str, float] = {}
        self.limiter = RateLimiter(settings.rate_limit)

    @classmethod
    def from_settings(cls, settings: Settings, progress=print) -> Assistant:
        settings.ensure_home()
        warnings: list[str] = []

        def warn(message: str) -> None:
            warnings.append(message)
            progress(f"Warning: {message}")

        try:
            catalog = Catalog.load(extra=settings.catalog_file)
        except BadInput as err:  # a broken user file must not stop the app either
            warn(f"{err} Using the built-in catalog only.")
            catalog = Catalog.load()
        if settings.text_model:
            catalog.get(settings.text_model)  # fail early, naming the known ids
        else:
            measured = measured_text_default(settings, catalog)
            if measured:
                progress(
                    f"Text model: {measured}, the fastest one chat that `bench text` "
                    f"measured on this CPU ({settings.home / BENCH_TEXT_FILE})"
                )
                settings = settings.with_(text_model=measured)
        pool = Pool(
            factory=lambda model_id: build_adapter(catalog.get(model_id), settings, progress),
            memory_budget_mb=settings.memory_gb * 1024,
            sizes={e.id: e.memory_mb for e in catalog.entries.values()},
            fallbacks={e.id: e.fallback for e in catalog.entries.values() if e.fallback},
            log=progress,
        )
        try:
            prices = Prices.load()
        except BadInput as err:  # a broken override must not stop the app
            warn(f"{err} Using the built-in price table.")
            prices = Prices.load(PRICES_FILE)
        ledger = open_ledger(settings, warn, progress)
        assistant = cls(settings, catalog, pool, ledger, prices)
        if ledger.db.shared:  # every shared store's schema version is checked at start
            assistant.chats  # noqa: B018
            Votes(ledger.db)
            open_registry(ledger.db)
        assistant.warnings = warnings
        return assistant

    # -- requests -------------------------------------------------------------

    def check(self, request: Request) -> Request:
        """Reject what no model should see; return the request with clean text."""
        return checked(self.settings, request)

    def handle(
        self, request: Request, source: str = "cli", cancel: threading.Event | None = None
    ) -> Iterator[str | Progress | Loading | Outcome]:
        """Yield text pieces as the model produces them, then one Outcome.

        Between them: a Loading before a model that is not resident loads, and a
        picture's Progress per step; only the text pieces are the reply.

        Audio is a chain: the transcript is routed again as a child request
        (its own ledger row, linked by parent id) unless the request asks only
        for a transcript. A request that asks to be spoken gets one more
        linked step: the answer read aloud.
        """
        return chains.handle(self, request, source, cancel)

    def ask(self, request: Request, source: str = "cli") -> Outcome:
        """Run a request to the end and return its Outcome."""
        outcome = None
        for item in self.handle(request, source):
            if isinstance(item, Outcome):
                outcome = item
        assert outcome is not None
        return outcome

    # -- documents ------------------------------------------------------------

    def ingest(
        self,
        path: Path,
        name: str | None = None,
        user: str = "local",
        shared: bool = False,
        source: str = "cli",
        progress: Callable[[float, str], None] | None = None,
    ) -> Outcome:
        """Add one file to the user's (or the shared) collection; recorded like a request."""
        return ingest.ingest(self, path, name, user, shared, source, progress)

    def embed(
        self,
        texts: list[str],
        model: str | None = None,
        session_id: str = "api",
        source: str = "api",
        user: str = "local",
    ) -> tuple[Outcome, list[list[float]]]:
        """Vectors for ``texts`` from an embedding model; recorded and priced like a request."""
        return ingest.embed(self, texts, model, session_id, source, user)

    def embedder_id(self) -> str:
        """The embedding model the document store's vectors come from."""
        return ingest.embedder_id(self)

    @property
    def store(self) -> Store:
        # Opened on first use: Chroma takes ~0.5 s to open, and most chats never need it.
        if self._store is None:
            shared = self.ledger.db if self.ledger.db.shared else None
            self._store = Store(
                self.settings.documents_dir,
                self.embedder_id(),
                self.settings.chroma_url,
                registry=shared,
                kept=self.settings.kept_dir,
            )
            # A message's own attachments left by a crash mid-request (on any replica).
            self._store.drop_stale(ONCE_PREFIX, ONCE_TTL_S)
        return self._store

    # -- conversations --------------------------------------------------------

    @property
    def chats(self) -> Chats:
        if self._chats is None:
            self._chats = Chats(self.database_for(self.settings.chats_path))
        return self._chats

    def database_for(self, sqlite_path: Path) -> Path | Database:
        """Where a store lives: with the ledger when it is shared (on its connections), else
        in its own SQLite file."""
        return self.ledger.db if self.ledger.db.shared else sqlite_path

    def templates(self) -> dict[str, Template]:
        # Read each time: a person editing ASSISTANT_HOME/templates.json sees it at once.
        return load_templates(self.settings.home)
