"""Text generation on a remote OpenAI-compatible endpoint (vLLM, TGI, LocalAI, a hosted API).

This is how the assistant goes past one machine: the endpoint does the
work, this adapter streams its reply and turns every way a remote server
can fail (down, slow, wrong key, unknown model, a reply that is not
OpenAI-shaped) into a message the user can act on. Nothing is loaded
locally, so ``load()`` only builds the client, and ``device`` names where
the work runs ("remote:gpu-box:8000"), which the ledger and route card show.

Every call also records the endpoint's health (see ``health``): the last
failure's reason until it answers again, and ``probe`` asks it directly.
The other families on such endpoints are in models/remote_media.py.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from models.base import Adapter, BadInput, ModelUnavailable, Refused, Request, Result, Usage
from models.text import trimmed_note

# Without the server's tokenizer, prompt length is estimated from characters;
# 3 per token is on the safe side for English and code (GPT-style BPEs give ~4).
CHARS_PER_TOKEN = 3


@dataclass(frozen=True)
class Health:
    """What is known of an endpoint: from its last answer or a probe."""

    ok: bool
    reason: str  # "answered", or why it is unhealthy (the message users were given)
    at: float  # time.time() when it was learnt


_HEALTH: dict[str, Health] = {}  # endpoint URL -> its last known health, this process


def health(endpoint: str) -> Health | None:
    """The endpoint's last known health; None before anything was asked of it."""
    return _HEALTH.get(endpoint.rstrip("/"))


def record(endpoint: str, ok: bool, reason: str) -> Health:
    state = Health(ok, reason, time.time())
    _HEALTH[endpoint.rstrip("/")] = state
    return state


def remote_device(endpoint: str) -> str:
    """Where the work runs, as the ledger's device column says it: "remote:host:port"."""
    return "remote:" + (urlparse(endpoint).netloc or endpoint)


class RemoteAdapter(Adapter):
    """What every family on an OpenAI-compatible endpoint shares: the client and its key."""

    # The server batches and queues; several users may be served at once.
    concurrent_safe = True
    what = "answer"  # the reply expected, named when a server sends another shape

    def __init__(
        self,
        endpoint: str,
        model: str,
        api_key_env: str = "",
        timeout_s: float = 60.0,
        client: Any = None,
    ):
        self.endpoint = endpoint.rstrip("/")  # e.g. http://gpu-box:8000/v1
        self.model = model  # the name the server knows the model by
        self.api_key_env = api_key_env  # environment variable holding the key, if any
        # Longest wait for the server to send anything (connect, first token,
        # or between tokens): past it the user is told the endpoint is slow.
        self.timeout_s = timeout_s
        self.client = client
        self.device = remote_device(self.endpoint)

    def load(self) -> None:
        if self.client is not None:
            return
        import openai

        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        if self.api_key_env and not key:
            raise ModelUnavailable(
                f"The endpoint {self.endpoint} needs an API key: set {self.api_key_env} "
                "in the environment the assistant runs in, then try again."
            )
        # No retries: a user waiting on a chat wants "it is down" now, not after
        # the client's backoff; a second try is one click away.
        self.client = openai.OpenAI(
            base_url=self.endpoint,
            api_key=key or "not-needed",
            timeout=self.timeout_s,
            max_retries=0,
        )

    def unload(self) -> None:
        if self.client is not None:
            self.client.close()
        self.client = None

    def errors(self):
        """The context every call runs in: failures become messages, and mark its health."""
        return endpoint_errors(
            self.endpoint, self.model, self.timeout_s, self.api_key_env, self.what
        )

    def wrong_shape(self, detail: str) -> ModelUnavailable:
        """A 200 that is not what an OpenAI-compatible server sends: unhealthy, and why."""
        message = (
            f"The endpoint {self.endpoint} answered, but not with an OpenAI-compatible "
            f"{self.what} ({detail}). Is it an OpenAI-compatible server (the address "
            "should end in /v1)?"
        )
        record(self.endpoint, False, message)
        return ModelUnavailable(message)


class OpenAIChat(RemoteAdapter):
    family = "text"
    tasks = ("text",)
    what = "chat completion"

    def __init__(
        self,
        endpoint: str,
        model: str,
        api_key_env: str = "",
        timeout_s: float = 60.0,
        context_window: int = 8192,
        client: Any = None,
    ):
        super().__init__(endpoint, model, api_key_env, timeout_s, client)
        self.context_window = context_window

    def content(self, request: Request) -> str | list:
        """The last user message's content: the words (vision adds its pictures)."""
        return request.text

    def messages(self, request: Request) -> tuple[list[dict], int]:
        """The conversation to send, oldest turns dropped to fit; (messages, dropped)."""
        system = [m for m in request.history if m.role == "system"]
        turns = [m for m in request.history if m.role != "system"]
        budget = (self.context_window - request.max_new_tokens) * CHARS_PER_TOKEN
        dropped = request.dropped_turns
        while True:
            messages = [{"role": m.role, "content": m.content} for m in system + turns]
            size = sum(len(m["content"]) for m in messages) + len(request.text)
            messages.append({"role": "user", "content": self.content(request)})
            if size <= budget:
                return messages, dropped
            if not turns:
                raise BadInput(
                    f"This message is about {size // CHARS_PER_TOKEN} tokens long; with room "
                    f"for the answer it exceeds the context window of {self.context_window} "
                    f"tokens of '{self.model}'. Shorten it, or upload it as a document."
                )
            turns = turns[2:] if len(turns) > 1 and turns[1].role == "assistant" else turns[1:]
            dropped += 1

    def stream(
        self, request: Request, cancel: threading.Event | None = None
    ) -> Iterator[str | Result]:
        messages, dropped = self.messages(request)
        pieces: list[str] = []
        usage = None
        chunks = 0
        with self.errors():
            stream = self.client.chat.completions.create(
                model=self.model,
                messages=messages,
                max_tokens=request.max_new_tokens,
                temperature=request.temperature,
                stream=True,
                stream_options={"include_usage": True},
            )
            with stream:
                for chunk in stream:
                    chunks += 1
                    if cancel is not None and cancel.is_set():
                        break  # leaving the block closes the connection: the server stops
                    if getattr(chunk, "usage", None):
                        usage = chunk.usage
                    for choice in chunk.choices or ():
                        piece = choice.delta.content if choice.delta else None
                        if piece:
                            pieces.append(piece)
                            yield piece
        if not chunks:  # e.g. an HTML page where an event stream should be
            raise self.wrong_shape("no event stream")
        text = "".join(pieces).strip()
        notes = list(trimmed_note(dropped))
        if usage is not None:
            counts = Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0, "tokens")
        else:
            # Some servers ignore stream_options; estimate, and say so.
            chars_in = sum(len(str(m["content"])) for m in messages)
            counts = Usage(chars_in // 4, len(text) // 4, "tokens")
            notes.append("The endpoint did not report token counts; they are estimated.")
        yield Result(text=text, usage=counts, notes=tuple(notes))


@contextmanager
def endpoint_errors(
    endpoint: str, model: str, timeout_s: float, api_key_env: str = "", what: str = "answer"
) -> Iterator[None]:
    """Turn every way an OpenAI-compatible server can fail into a message a person can act on.

    Wraps both the request and the reading of its stream (a server that dies
    mid-answer fails there), and records the endpoint's health: the message
    while it fails, "answered" once it answers again. Shared with the local
    llama.cpp server's adapter.
    """
    try:
        with _translated(endpoint, model, timeout_s, api_key_env, what):
            yield
    except ModelUnavailable as err:
        record(endpoint, False, str(err))
        raise
    record(endpoint, True, "answered")


@contextmanager
def _translated(
    endpoint: str, model: str, timeout_s: float, api_key_env: str, what: str
) -> Iterator[None]:
    import httpx
    import openai

    try:
        yield
    except openai.APITimeoutError:
        raise ModelUnavailable(
            f"Endpoint unavailable: {endpoint} did not answer within {timeout_s:g} s. "
            "It may be overloaded; try again, or pick another model."
        ) from None
    except openai.APIConnectionError as err:
        raise ModelUnavailable(
            f"Endpoint unavailable: {endpoint} cannot be reached ({_cause(err)}). Check that "
            "the server is running and the address is right, or pick another model."
        ) from None
    except httpx.HTTPError as err:  # the connection broke while the stream was read
        raise ModelUnavailable(
            f"Endpoint unavailable: {endpoint} broke off its answer "
            f"({_short(str(err)) or type(err).__name__}). Try again, or pick another model."
        ) from None
    except openai.AuthenticationError:
        raise ModelUnavailable(
            f"The endpoint {endpoint} refused the API key"
            + (f" in {api_key_env}." if api_key_env else ".")
        ) from None
    except openai.NotFoundError:
        raise ModelUnavailable(
            f"The endpoint {endpoint} does not serve a model named '{model}' "
            "(or is not OpenAI-compatible at this address; it should end in /v1)."
        ) from None
    except openai.RateLimitError:
        raise Refused(
            f"The endpoint {endpoint} is rate-limiting requests. Wait a moment and try again."
        ) from None
    except openai.APIStatusError as err:
        raise ModelUnavailable(
            f"The endpoint {endpoint} answered with HTTP {err.status_code}: {_server_message(err)}"
        ) from None
    except openai.APIError as err:  # an error event in the stream, after a 200 (vLLM, this app)
        raise ModelUnavailable(
            f"The endpoint {endpoint} failed mid-answer: {_server_message(err)}"
        ) from None
    except (
        openai.APIResponseValidationError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
    ) as err:
        raise ModelUnavailable(
            f"The endpoint {endpoint} sent a reply that is not an OpenAI-compatible "
            f"{what} ({type(err).__name__}). Is it an OpenAI-compatible server?"
        ) from None


def probe(endpoint: str, model: str, api_key_env: str = "", timeout_s: float = 5.0) -> Health:
    """Ask the endpoint's ``/models`` whether it is up and serves ``model``; record the answer.

    The health check of ``python -m assistant models --check``: an endpoint
    that answers with another shape (an HTML page, a JSON without a model
    list) is unhealthy, with that as the reason.
    """
    import httpx

    endpoint = endpoint.rstrip("/")
    key = os.environ.get(api_key_env, "") if api_key_env else ""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        reply = httpx.get(f"{endpoint}/models", headers=headers, timeout=timeout_s)
    except httpx.HTTPError as err:
        return record(
            endpoint, False, f"Endpoint unavailable: {endpoint} cannot be reached ({_short(err)})"
        )
    if reply.status_code != 200:
        return record(endpoint, False, f"GET /models answered HTTP {reply.status_code}")
    try:
        ids = [m["id"] for m in reply.json()["data"]]
    except (ValueError, KeyError, TypeError) as err:
        return record(
            endpoint,
            False,
            f"GET /models is not an OpenAI-compatible model list ({type(err).__name__}): "
            f"{_short(reply.text, 80)}",
        )
    if model not in ids:
        return record(endpoint, False, f"it does not list a model named '{model}'")
    return record(endpoint, True, f"lists '{model}'")


def _server_message(err: Any) -> str:
    """The server's own words from an OpenAI-shaped error body, else the client's."""
    body = err.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return _short(inner["message"])
        if isinstance(inner, str):
            return _short(inner)
    return _short(err.message)


def _cause(err: Exception) -> str:
    inner = err.__cause__ or err.__context__
    return _short(str(inner) if inner else str(err))


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "…"
