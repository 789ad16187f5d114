"""What every route group shares: the Assistant behind them (its model calls wrapped for
ZeroGPU), the caller as a FastAPI dependency, and how a body names a model and a session."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request as HttpRequest

from assistant.flow.outcome import Outcome
from assistant.flow.service import Assistant
from assistant.settings import Settings
from assistant.web.access import api_caller
from assistant.web.api.errors import ApiError
from assistant.web.space import gpu

# OpenAI's model names, mapped to the task whose default model serves them.
ALIASES = {
    "whisper-1": "asr",
    "gpt-4o-transcribe": "asr",
    "dall-e-2": "image_generation",
    "dall-e-3": "image_generation",
    "gpt-image-1": "image_generation",
    "text-embedding-3-small": "rag",
    "text-embedding-ada-002": "rag",
}


@dataclass(frozen=True)
class Api:
    """One Assistant as the route groups use it."""

    assistant: Assistant
    settings: Settings  # as they were when /v1 was mounted
    # On ZeroGPU a GPU is attached only inside spaces.GPU (a no-op elsewhere),
    # as for the UI: a model the UI left on the GPU must not be run without one.
    ask: Callable
    embed: Callable

    @classmethod
    def of(cls, assistant: Assistant) -> Api:
        return cls(assistant, assistant.settings, gpu(assistant.ask), gpu(assistant.embed))

    async def caller(self, http: HttpRequest) -> str:
        """The user this call acts as (access.api_caller), or 401 without a valid credential.

        Every route but the catch-all depends on it (``Depends(api.caller)``), so the
        credential is checked before the body is read.
        """
        settings = self.settings
        host = http.client.host if http.client else None
        user = api_caller(settings, http.headers.get("authorization"), host)
        if user is None:
            how = (
                ["'Authorization: Bearer <key>' with the key in ASSISTANT_API_KEY"]
                if settings.api_key
                else []
            )
            if settings.auth:
                how.append("'Authorization: Bearer <user>:<password>' of an ASSISTANT_AUTH login")
            raise ApiError(
                401,
                f"Missing or wrong credential: send {' or '.join(how)}.",
                code="invalid_api_key",
            )
        return user

    def model(self, name, task: str) -> str | None:
        """A catalog id for ``name`` (None: let the router or the task default choose)."""
        catalog = self.assistant.catalog
        if name in (None, "", "auto"):
            return None
        if not isinstance(name, str):
            raise ApiError(400, "'model' must be a string.", param="model")
        if ALIASES.get(name) == task:
            entry = catalog.default_for(task)
            return entry.id if entry else None
        entry = catalog.entries.get(name)
        if entry is None:  # a listed model that is not built yet gets its 503 from the service
            known = ", ".join(["auto"] + [e.id for e in catalog.for_task(task) if e.built])
            raise ApiError(
                404,
                f"The model '{name[:100]}' does not exist here. For this route: {known}.",
                param="model",
                code="model_not_found",
            )
        if task not in entry.tasks:
            raise ApiError(
                400,
                f"The model '{name}' serves {', '.join(entry.tasks)}, not {task}.",
                param="model",
            )
        return entry.id


def session(body: dict, user: str) -> str:
    """The session: the caller's, split by the body's ``user`` (OpenAI's end-user id).

    The body names a session of its caller, never another caller's.
    """
    end_user = body.get("user")
    end_user = str(end_user)[:64] if end_user else "anonymous"
    return f"api-{end_user}" if user == "local" else f"api-{user}/{end_user}"


def extra(outcome: Outcome) -> dict:
    """What the panel shows, for API callers that want it (OpenAI clients ignore it)."""
    data = outcome.as_json()
    notes = (data.get("output") or {}).get("notes", [])  # e.g. "The 180 oldest exchanges..."
    return {**{k: data.get(k) for k in ("request_id", "route", "timings", "cost")}, "notes": notes}


def usage(outcome: Outcome) -> dict:
    used = outcome.result.usage
    n_in, n_out = int(used.units_in), int(used.units_out)
    return {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}
