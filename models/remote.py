"""Text generation on a remote OpenAI-compatible endpoint (vLLM, TGI, LocalAI, a hosted API).

This is how the assistant goes past one machine: the endpoint does the
work, this adapter streams its reply and turns every way a remote server
can fail (down, slow, wrong key, unknown model, a reply that is not
OpenAI-shaped) into a message the user can act on. Nothing is loaded
locally, so ``load()`` only builds the client and ``device`` is "remote".
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from models.base import Adapter, BadInput, ModelUnavailable, Refused, Request, Result, Usage
from models.text import trimmed_note

# Without the server's tokenizer, prompt length is estimated from characters;
# 3 per token is on the safe side for English and code (GPT-style BPEs give ~4).
CHARS_PER_TOKEN = 3


class OpenAIChat(Adapter):
    family = "text"
    tasks = ("text",)
    # The server batches and queues; several users may stream at once.
    concurrent_safe = True
    device = "remote"

    def __init__(
        self,
        endpoint: str,
        model: str,
        api_key_env: str = "",
        timeout_s: float = 60.0,
        context_window: int = 8192,
        client: Any = None,
    ):
        self.endpoint = endpoint.rstrip("/")  # e.g. http://gpu-box:8000/v1
        self.model = model  # the name the server knows the model by
        self.api_key_env = api_key_env  # environment variable holding the key, if any
        # Longest wait for the server to send anything (connect, first token,
        # or between tokens): past it the user is told the endpoint is slow.
        self.timeout_s = timeout_s
        self.context_window = context_window
        self.client = client

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

    def messages(self, request: Request) -> tuple[list[dict], int]:
        """The conversation to send, oldest turns dropped to fit; (messages, dropped)."""
        system = [m for m in request.history if m.role == "system"]
        turns = [m for m in request.history if m.role != "system"]
        budget = (self.context_window - request.max_new_tokens) * CHARS_PER_TOKEN
        dropped = request.dropped_turns
        while True:
            messages = [{"role": m.role, "content": m.content} for m in system + turns]
            messages.append({"role": "user", "content": request.text})
            size = sum(len(m["content"]) for m in messages)
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
        with endpoint_errors(self.endpoint, self.model, self.timeout_s, self.api_key_env):
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
            raise ModelUnavailable(
                f"The endpoint {self.endpoint} answered, but not with a chat completion "
                "stream. Is it an OpenAI-compatible server (the address should end in /v1)?"
            )
        text = "".join(pieces).strip()
        notes = list(trimmed_note(dropped))
        if usage is not None:
            counts = Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0, "tokens")
        else:
            # Some servers ignore stream_options; estimate, and say so.
            chars_in = sum(len(m["content"]) for m in messages)
            counts = Usage(chars_in // 4, len(text) // 4, "tokens")
            notes.append("The endpoint did not report token counts; they are estimated.")
        yield Result(text=text, usage=counts, notes=tuple(notes))


@contextmanager
def endpoint_errors(
    endpoint: str, model: str, timeout_s: float, api_key_env: str = ""
) -> Iterator[None]:
    """Turn every way an OpenAI-compatible server can fail into a message a person can act on.

    Wraps both the request and the reading of its stream (a server that dies
    mid-answer fails there). Shared with the local llama.cpp server's adapter.
    """
    import httpx
    import openai

    try:
        yield
    except openai.APITimeoutError:
        raise ModelUnavailable(
            f"The endpoint {endpoint} did not answer within {timeout_s:g} s. "
            "It may be overloaded; try again, or pick another model."
        ) from None
    except openai.APIConnectionError as err:
        raise ModelUnavailable(
            f"The endpoint {endpoint} cannot be reached ({_cause(err)}). Check that "
            "the server is running and the address is right, or pick another model."
        ) from None
    except httpx.HTTPError as err:  # the connection broke while the stream was read
        raise ModelUnavailable(
            f"The endpoint {endpoint} broke off its answer "
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
    except (
        openai.APIResponseValidationError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
    ) as err:
        raise ModelUnavailable(
            f"The endpoint {endpoint} sent a reply that is not an OpenAI-compatible "
            f"chat completion ({type(err).__name__}). Is it an OpenAI-compatible server?"
        ) from None


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
