"""Chroma, as the store uses it: an embedded or a server client, and an
embedding function that names the assistant's embedder and never embeds."""

from __future__ import annotations

import re
from pathlib import Path

from models.base import BadInput, ModelUnavailable


def client(path: Path, url: str | None):
    try:
        import chromadb
        from chromadb.config import Settings as ChromaSettings
    except ImportError:
        raise ModelUnavailable(
            "chromadb is not installed: pip install -r requirements.txt"
        ) from None
    quiet = ChromaSettings(anonymized_telemetry=False)  # no phoning home from a private store
    if not url:
        return chromadb.PersistentClient(path=str(path), settings=quiet)
    m = re.match(r"^(https?)://([^/:]+)(?::(\d+))?/?$", url)
    if not m:
        raise BadInput(f"ASSISTANT_CHROMA_URL={url!r} is not like http://127.0.0.1:8000")
    try:
        return chromadb.HttpClient(
            host=m[2], port=int(m[3] or 8000), ssl=m[1] == "https", settings=quiet
        )
    except Exception as err:  # the client checks the server at once
        raise ModelUnavailable(f"The Chroma server at {url} cannot be reached ({err}).") from None


_EF_CLASS = None


def embedding_function(model_id: str):
    """Chroma's EmbeddingFunction naming the assistant's embedder.

    The store always passes vectors itself, so this one never embeds: it
    records which model made the vectors and keeps Chroma from falling back
    to its default function, which downloads a model. Built on first use,
    since importing chromadb at module import would slow every start.
    """
    global _EF_CLASS
    if _EF_CLASS is None:
        from chromadb.api.types import Documents, EmbeddingFunction

        class AssistantEmbedding(EmbeddingFunction[Documents]):
            def __init__(self, model_id: str = ""):
                self.model_id = model_id

            def __call__(self, input: Documents):
                raise ModelUnavailable(
                    "This collection is embedded by the assistant; query it through it."
                )

            @staticmethod
            def name() -> str:
                return "assistant-embedder"

            def get_config(self) -> dict:
                return {"model": self.model_id}

            @staticmethod
            def build_from_config(config: dict):
                return AssistantEmbedding(config.get("model", ""))

            def default_space(self):
                return "cosine"

        _EF_CLASS = AssistantEmbedding
    return _EF_CLASS(model_id)
