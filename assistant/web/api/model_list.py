"""GET /v1/models: "auto" (the router chooses) and every built catalog entry."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from assistant.web.api.shared import Api


def routes(api: Api) -> APIRouter:
    router = APIRouter()

    @router.get("/models", dependencies=[Depends(api.caller)])
    async def models():
        return {"object": "list", "data": model_list(api)}

    return router


def model_list(api: Api) -> list[dict]:
    weights = api.settings.weights_dir
    data = [
        {
            "id": "auto",
            "object": "model",
            "created": 0,
            "owned_by": "assistant",
            "description": "the router chooses per request",
        }
    ]
    for entry in api.assistant.catalog.entries.values():
        if entry.built:
            ok, why = entry.availability(weights)
            data.append(
                {
                    "id": entry.id,
                    "object": "model",
                    "created": 0,
                    "owned_by": "assistant",
                    "family": entry.family,
                    "tasks": list(entry.tasks),
                    "available": ok,
                    "availability": why,
                }
            )
    return data
