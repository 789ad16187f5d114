"""The adapter contract every model family follows, and the types it speaks.

An adapter is a small class: capabilities as class attributes, ``__init__``
stores configuration only, ``load()`` imports the heavy library and reads
weights, ``run()`` turns a :class:`Request` into a :class:`Result`. Nothing
here imports torch, so ``import models`` stays instant.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, Protocol

# --- domain errors -------------------------------------------------------
# A handful of exceptions raised where input is checked. Each message says
# what was wrong and what to do; the UI, the API and the CLI turn them into
# a user-facing answer in one place each, never a traceback.


class AssistantError(Exception):
    """Base of the errors a user may see; str(err) is the message shown."""

    status = "error"


class BadInput(AssistantError):
    """The request itself is wrong (empty, too long, unknown model, bad file)."""


class ModelUnavailable(AssistantError):
    """The model cannot be used here (not installed, corrupted, no hub, not built)."""


class Refused(AssistantError):
    """The request is well formed but policy says no."""

    status = "refused"


class BudgetExceeded(Refused):
    """The session's cost budget (or the user's daily quota) does not allow this request."""


class RateLimited(Refused):
    """Too many requests from one user in a short time; retry in a moment."""


# --- request / result ----------------------------------------------------

# What a request or a step does. The first six are what requests are routed to
# (DESIGN.md's contract); a chain adds the last two: a spoken reply, and the
# retrieved passages reordered (ASSISTANT_RERANKER).
Task = Literal["text", "image_generation", "image_edit", "vision", "asr", "rag", "tts", "rerank"]


@dataclass(frozen=True)
class Message:
    """One earlier turn of a conversation."""

    role: str  # "system" | "user" | "assistant"
    content: str  # plain text of the turn


@dataclass(frozen=True)
class PictureOptions:
    """A picture's controls as a person, an API caller or "same again" set them.

    None leaves the model's own value (its catalog defaults); a seed of -1
    asks for a new one.
    """

    steps: float | None = None
    guidance: float | None = None
    seed: float | None = None
    width: float | None = None
    height: float | None = None
    strength: float | None = None  # how far an edit may move from the uploaded picture
    negative: str | None = None  # what the picture should not show

    def given(self) -> dict[str, float | str]:
        """The controls that were set, by name: what a model merges over its own defaults."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Request:
    """What a model family is asked to do; built by the app, read by adapters."""

    text: str = ""  # the user's words (may be empty when only files are sent)
    attachments: tuple[Path, ...] = ()  # uploaded files, already inside ASSISTANT_HOME
    history: tuple[Message, ...] = ()  # earlier turns, oldest first
    session_id: str = "cli"  # who is asking; groups requests in the ledger
    model: str | None = None  # catalog id that overrides the router's choice
    task: Task | None = None  # route task fixed by the caller (an API route), not guessed
    options: PictureOptions = PictureOptions()  # a picture's controls; unset: the model's own
    prefer: tuple[tuple[str, str], ...] = ()  # (task, catalog id): the person's picks per task
    max_new_tokens: int = 256  # generation cap for text output
    temperature: float = 0.0  # 0 means greedy, which is reproducible
    speak: bool = False  # also read the answer aloud (needs the optional TTS extra)
    user: str = "local"  # whose documents are searched: collection user-<user>, plus shared
    # How the prompt was made, for the ledger (adapters ignore it): chat id,
    # template id and its shots, the system prompt. The text is already applied.
    prompt: tuple[tuple[str, str], ...] = ()
    # Oldest exchanges the app already left out of ``history`` (too long to even
    # count in tokens); adapters add them to the ones they drop to fit, in their note.
    dropped_turns: int = 0
    # Stop after the first step: a transcript is the answer (evals, the
    # transcription API, words that ask for one), not a transcript routed again.
    transcribe_only: bool = False
    # Documents attached to this request: False answers from them for this request
    # only and keeps nothing; True also adds them to the user's collection, so later
    # questions can cite them (what the Documents tab does).
    keep_attachments: bool = False


@dataclass(frozen=True)
class Usage:
    """How much work a request was, in the family's own units."""

    units_in: float = 0  # e.g. prompt tokens, or seconds of audio heard
    units_out: float = 0  # e.g. generated tokens, or words transcribed
    unit: str = "tokens"  # "tokens" | "audio_seconds" | "images" | "characters" | "searches"


@dataclass(frozen=True)
class Result:
    """What an adapter produced."""

    text: str = ""  # the answer, transcript or caption
    files: tuple[Path, ...] = ()  # produced images/audio, inside ASSISTANT_HOME
    segments: tuple[dict, ...] = ()  # timed transcript segments {start, end, text}
    citations: tuple[dict, ...] = ()  # RAG sources {source, location, text}
    usage: Usage = field(default_factory=Usage)
    language: str | None = None  # detected language of a transcript
    notes: tuple[str, ...] = ()  # what the user should know about how it was made
    queue_s: float = 0.0  # waited inside the adapter for a batch slot (not compute)
    batch_size: int = 1  # requests that shared the model's work (for a fair cost share)
    recipe: tuple[tuple[str, str], ...] = ()  # how a produced file was made (seed, steps...)


@dataclass(frozen=True)
class Progress:
    """A step of long work (a picture's denoising steps), yielded between text pieces.

    Consumers that only want text skip it; the UI shows it as a progress bar.
    """

    done: int
    total: int
    what: str = "step"


# --- the adapter ---------------------------------------------------------


class Adapter:
    """Base class of every model family's adapter.

    Subclasses set the class attributes, keep ``__init__`` cheap, and do
    all heavy work in ``load()``. They override ``run()`` or ``stream()``:
    each has a default built on the other, so a family that streams writes
    only ``stream()`` and one that does not writes only ``run()``.
    """

    family: ClassVar[str] = ""  # "text" | "asr" | "image" | "vision" | "embed"
    tasks: ClassVar[tuple[Task, ...]] = ()  # route task names this adapter serves
    # Whether one loaded instance may run two requests at once. Most torch
    # models may not (shared KV caches, generator state), so the pool locks.
    concurrent_safe: ClassVar[bool] = False

    device: str = "cpu"  # where load() put the weights: "cpu" | "cuda" | "mps"

    def load(self) -> None:
        raise NotImplementedError

    def unload(self) -> None:
        """Drop the weights; the pool calls this when it evicts the model."""

    def run(self, request: Request) -> Result:
        return [item for item in self.stream(request) if isinstance(item, Result)][-1]

    def stream(
        self, request: Request, cancel: threading.Event | None = None
    ) -> Iterator[str | Progress | Result]:
        """Yield text pieces (and Progress) as they are produced, then the final Result."""
        yield self.run(request)


# --- what retrieval asks of a model -----------------------------------------
# The document flow needs one method of each; any adapter (or a test's fake)
# that has it serves.


class Embedder(Protocol):
    """Turns texts into vectors: the document store's, and the router's question."""

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class Reranker(Protocol):
    """Scores each passage for a question (higher: more relevant)."""

    def scores(self, query: str, passages: Sequence[str]) -> list[float]: ...


@contextmanager
def keeping_torch_threads() -> Iterator[None]:
    """Build a CTranslate2 model without changing torch's thread count on this thread.

    CTranslate2 sets OpenMP's thread count to its ``intra_threads`` on the
    thread that builds a model, and torch shares that OpenMP runtime: with
    the chat model's 1, every torch model later run on the same server
    thread (embeddings, Whisper, vision, pictures) ran on one core, seen as
    ``bench rag`` embedding on "1 threads". CTranslate2's own workers set
    their count themselves, so restoring it costs them nothing.
    """
    try:
        import torch
    except ImportError:  # no torch, nothing shares the count
        yield
        return
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def pick_device(preference: str = "auto") -> str:
    """Resolve "auto" to the best device present; import torch only here."""
    if preference != "auto":
        return preference
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def require(module: str, package: str = "", install: str = ""):
    """Import a heavy library inside ``load()``, or say which package to install.

    ``package`` is its pip name when that differs from the import name;
    ``install`` is how to get it when that is not the pinned runtime
    (requirements.txt, which ``make install`` installs). A missing library
    otherwise surfaces as a bare ModuleNotFoundError from deep in a request.
    """
    import importlib

    package = package or module
    try:
        return importlib.import_module(module)
    except ImportError as err:
        how = install or f"pip install -r requirements.txt (it pins {package}), or `make install`"
        raise ModelUnavailable(
            f"{package} is not installed ({err}). Install it with: {how}."
        ) from None


def hub_offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub reads it: 1, on, yes or true, in any case."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def require_download(source: str, url: str, cached: bool) -> None:
    """Fail at once, clearly, when ``source`` must be downloaded from ``url`` and cannot be.

    Without this, an offline machine spends ~50 s in the hub client's
    retries before saying the same thing. A local folder or a cached copy
    needs no network, so nothing is checked for them.
    """
    import socket
    from urllib.parse import urlparse

    if cached or Path(source).exists():
        return
    host = urlparse(url).hostname or url
    if hub_offline():
        raise ModelUnavailable(
            f"'{source}' must be downloaded from {host}, and HF_HUB_OFFLINE=1 says this machine "
            "cannot reach it. Copy the model into a local folder and point the catalog at it, "
            "or pick a packed model (python -m assistant models)."
        )
    try:
        socket.create_connection((host, 443), timeout=3.0).close()
    except OSError as err:
        raise ModelUnavailable(
            f"'{source}' must be downloaded from {host}, which this machine cannot reach "
            f"({err.strerror or err}). Use a machine with internet access, copy the model "
            "into a local folder and point the catalog at it, or pick a packed model "
            "(python -m assistant models)."
        ) from None


def hub_cached(repo_id: str, filename: str) -> bool:
    """Whether the Hugging Face cache already holds ``filename`` of ``repo_id`` (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, filename), str)
    except Exception:  # not installed, or not a repo id at all (a local folder, a size name)
        return False
