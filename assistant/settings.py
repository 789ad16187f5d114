"""One frozen Settings read from the environment (ASSISTANT_*) and passed down.

Nothing else in the product reads os.environ for its own configuration, so
a test builds a Settings by hand and the whole app follows it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from models.base import BadInput


def default_home() -> Path:
    # Spaces mounts persistent storage at /data; everything else keeps
    # its state next to the checkout.
    return Path("/data") if Path("/data").is_dir() and os.access("/data", os.W_OK) else Path("data")


GROUNDED_DEFAULT = ("qwen2.5-coder-0.5b-instruct-llamacpp", "qwen2.5-coder-0.5b-instruct")


@dataclass(frozen=True)
class Settings:
    home: Path  # ASSISTANT_HOME: everything the app writes lives here
    device: str = "auto"  # ASSISTANT_DEVICE: auto | cpu | cuda | mps
    memory_gb: float = 8.0  # ASSISTANT_MEMORY_GB: budget for resident models (RAM or VRAM)
    max_message_chars: int = 20_000  # ASSISTANT_MAX_MESSAGE_CHARS; longer: a document
    max_new_tokens: int = 256  # ASSISTANT_MAX_NEW_TOKENS: cap on one reply
    max_audio_seconds: float = 1800.0  # ASSISTANT_MAX_AUDIO_SECONDS: longer recordings are refused
    text_model: str | None = None  # ASSISTANT_TEXT_MODEL: catalog id of the default chat model
    # ASSISTANT_GROUNDED_MODEL: catalog ids, first available wins, of the model that answers
    # grounded work (documents, pictures, voice memos) and follow-ups; "off": the chat model.
    # Default: Qwen2.5-Coder-0.5B (llama.cpp, then CTranslate2), measured by `bench answers`.
    grounded_model: tuple[str, ...] = GROUNDED_DEFAULT
    # ASSISTANT_LLAMA_SPIN=on: llama.cpp decodes one chat on every core, its threads
    # spinning briefly between ops: ~1.5x faster on a quiet machine, ~0.5x when other
    # work holds a core (models/llama_native.SPIN_COUNT). Off: robust under load.
    llama_spin: bool = False
    # ASSISTANT_HISTORY_TURNS: earlier exchanges a grounded answer reads (short contexts).
    history_turns: int = 4
    # ASSISTANT_PROMPT_CHARS: characters of prompt (system, history, the message with its
    # excerpts) a local text model reads; older turns beyond it are left out, said in a
    # note. Unset: what its device reads in a few seconds (flow/requests.py PROMPT_CHARS).
    prompt_chars: int | None = None
    # ASSISTANT_SESSION_BUDGET_USD: $ here one session may spend (None: no cap).
    # Past 80% the router picks smaller models; past 100% requests are refused.
    session_budget_usd: float | None = None
    # ASSISTANT_CHROMA_URL: a Chroma server (`chroma run`), e.g. http://127.0.0.1:8000.
    # Unset: an embedded PersistentClient in ASSISTANT_HOME/chroma.
    chroma_url: str | None = None
    # ASSISTANT_DATABASE_URL: a PostgreSQL database (postgresql://user:pw@host:5432/db) that
    # holds the ledger, chats, votes, upload owners and the documents' registry for every
    # replica. Unset: SQLite files in ASSISTANT_HOME.
    database_url: str | None = None
    # ASSISTANT_SHARED_DIR: a folder every replica mounts at the same path (NFS, EFS...)
    # for uploads and documents' kept copies. Unset: ASSISTANT_HOME's own folders.
    shared_dir: Path | None = None
    # ASSISTANT_REPLICA_ID: this replica's name in the ledger (started rows say NAME:pid:start).
    # Unset: the host name.
    replica_name: str | None = None
    # ASSISTANT_REPLICA_TIMEOUT_S: on a shared database, a replica unheard of this long is
    # taken for dead and the requests it left open are closed as failed.
    replica_timeout_s: float = 60.0
    max_upload_mb: float = 100.0  # ASSISTANT_MAX_UPLOAD_MB: larger files are refused unread
    # ASSISTANT_API_KEY: when set, /v1 calls must send "Authorization: Bearer <key>".
    api_key: str | None = None
    # ASSISTANT_AUTH="ana:secret,bob:pw": the UI asks for a login; each user has their
    # own chats, documents and quota. Unset: no login, everyone is "local".
    auth: tuple[tuple[str, str], ...] = ()
    # ASSISTANT_PUBLIC=1: a server open to strangers. Generated pictures must pass an
    # NSFW check; where no checker can be loaded, image generation is off.
    public: bool = False
    # ASSISTANT_NSFW_CHECKER: hub id or folder of diffusers' StableDiffusionSafetyChecker.
    nsfw_checker: str = "CompVis/stable-diffusion-safety-checker"
    # ASSISTANT_TINY_VAE: e.g. madebyollin/taesd (SDXL: taesdxl); decodes pictures
    # for a few percent of the full VAE's cost, with a little less detail.
    tiny_vae: str | None = None
    # ASSISTANT_IMAGE_MODEL: catalog id for pictures. Unset: sd-turbo when a CUDA GPU
    # is present, else the demo model (no real text-to-image weights ship on PyPI).
    image_model: str | None = None
    # ASSISTANT_RERANKER: catalog id of a cross-encoder (ms-marco-minilm-l6-v2, a hub
    # model) that reorders retrieved passages before the answer. Unset: no reranking.
    reranker: str | None = None
    rate_limit: float | None = None  # ASSISTANT_RATE_LIMIT: requests per user per minute
    daily_quota_usd: float | None = None  # ASSISTANT_DAILY_QUOTA_USD: $ here per user per day
    # ASSISTANT_ALLOWED_HOSTS="chat.example.com,other.org" (or "*"): the host names a
    # request may address. IP addresses and localhost always may; any other name is
    # refused, so a page on a rebinding domain cannot reach a server on this machine.
    # On Hugging Face Spaces the Space's own host (SPACE_HOST) is added.
    allowed_hosts: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)

        def number(name: str, default: float, kind: type = float):
            raw = env.get(name)
            if raw in (None, ""):
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise BadInput(
                    f"{name}={raw!r} is not a number; unset it or give e.g. {default}."
                ) from None
            if value <= 0:
                raise BadInput(f"{name}={raw!r} must be greater than zero.")
            return value

        return cls(
            # Absolute, so that no later chdir or relative link can move it.
            home=Path(env.get("ASSISTANT_HOME") or default_home()).expanduser().absolute(),
            device=env.get("ASSISTANT_DEVICE", "auto") or "auto",
            memory_gb=number("ASSISTANT_MEMORY_GB", 8.0),
            max_message_chars=number("ASSISTANT_MAX_MESSAGE_CHARS", 20_000, int),
            max_new_tokens=number("ASSISTANT_MAX_NEW_TOKENS", 256, int),
            max_audio_seconds=number("ASSISTANT_MAX_AUDIO_SECONDS", 1800.0),
            text_model=env.get("ASSISTANT_TEXT_MODEL") or None,
            grounded_model=_ids(env.get("ASSISTANT_GROUNDED_MODEL")),
            llama_spin=_switch(env, "ASSISTANT_LLAMA_SPIN"),
            history_turns=number("ASSISTANT_HISTORY_TURNS", 4, int),
            prompt_chars=number("ASSISTANT_PROMPT_CHARS", 0, int) or None,
            session_budget_usd=_budget(env.get("ASSISTANT_SESSION_BUDGET_USD")),
            chroma_url=env.get("ASSISTANT_CHROMA_URL") or None,
            database_url=env.get("ASSISTANT_DATABASE_URL") or None,
            shared_dir=_folder(env.get("ASSISTANT_SHARED_DIR")),
            replica_name=env.get("ASSISTANT_REPLICA_ID") or None,
            replica_timeout_s=number("ASSISTANT_REPLICA_TIMEOUT_S", 60.0),
            max_upload_mb=number("ASSISTANT_MAX_UPLOAD_MB", 100.0),
            api_key=env.get("ASSISTANT_API_KEY") or None,
            auth=_auth(env.get("ASSISTANT_AUTH")),
            public=_switch(env, "ASSISTANT_PUBLIC"),
            nsfw_checker=env.get("ASSISTANT_NSFW_CHECKER")
            or "CompVis/stable-diffusion-safety-checker",
            tiny_vae=env.get("ASSISTANT_TINY_VAE") or None,
            image_model=env.get("ASSISTANT_IMAGE_MODEL") or None,
            reranker=env.get("ASSISTANT_RERANKER") or None,
            rate_limit=number("ASSISTANT_RATE_LIMIT", 0.0) or None,
            daily_quota_usd=number("ASSISTANT_DAILY_QUOTA_USD", 0.0) or None,
            allowed_hosts=tuple(
                h.strip().lower()
                for h in f"{env.get('ASSISTANT_ALLOWED_HOSTS', '')},"
                f"{env.get('SPACE_HOST', '')}".split(",")
                if h.strip()
            ),
        )

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    @property
    def weights_dir(self) -> Path:
        return self.home / "weights"

    @property
    def uploads_dir(self) -> Path:
        return (self.shared_dir or self.home) / "uploads"

    @property
    def upload_owners_path(self) -> Path:
        # Which browser sent each upload (assistant/web/owners.py).
        return self.home / "upload_owners.sqlite"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    @property
    def documents_dir(self) -> Path:
        # The documents' registry, full-text index, kept copies and (embedded) Chroma.
        return self.home / "documents"

    @property
    def kept_dir(self) -> Path:
        # Indexed documents' kept copies (cited recordings play from them).
        if self.shared_dir is not None:
            return self.shared_dir / "documents"
        return self.documents_dir / "files"

    @property
    def catalog_file(self) -> Path:
        """The user's own catalog entries (remote endpoints, local folders)."""
        return self.home / "catalog.json"

    @property
    def ledger_path(self) -> Path:
        return self.home / "ledger.sqlite"

    @property
    def chats_path(self) -> Path:
        return self.home / "chats.sqlite"

    def ensure_home(self) -> None:
        """Create ASSISTANT_HOME or say clearly why it cannot be used.

        A probe file is written because permission bits alone do not tell
        (root ignores them, and read-only mounts keep them).
        """
        probe = self.home / ".write-test"
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            probe.write_text("ok")
            probe.unlink()
        except OSError as err:
            raise BadInput(
                f"ASSISTANT_HOME={self.home} is not a writable folder ({err.strerror}). "
                "Point ASSISTANT_HOME at a folder you can write, e.g. "
                "ASSISTANT_HOME=$HOME/.assistant make run"
            ) from err


def _folder(raw: str | None) -> Path | None:
    # Absolute, as ASSISTANT_HOME: an upload is known by its path, the same on every replica.
    return Path(raw).expanduser().absolute() if raw else None


def _auth(raw: str | None) -> tuple[tuple[str, str], ...]:
    """'ana:secret,bob:pw' -> (("ana", "secret"), ("bob", "pw")), or BadInput naming the fix."""
    if not raw:
        return ()
    pairs = []
    for item in raw.split(","):
        user, sep, password = item.strip().partition(":")
        if not sep or not user.strip() or not password:
            raise BadInput(
                "ASSISTANT_AUTH must be user:password pairs separated by commas, e.g. "
                "'ana:secret,bob:pw' (an entry had no ':' or an empty part)."
            )
        pairs.append((user.strip(), password))
    return tuple(pairs)


def _ids(raw: str | None) -> tuple[str, ...]:
    """'a,b' -> ("a", "b"); unset: the default; "off" or "none": () (the chat model answers)."""
    if raw is None or not raw.strip():
        return GROUNDED_DEFAULT
    if raw.strip().lower() in ("off", "none"):
        return ()
    return tuple(i.strip() for i in raw.split(",") if i.strip())


def _budget(raw: str | None) -> float | None:
    # Zero is a valid budget (nothing may run), unlike the other numbers.
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadInput(
            f"ASSISTANT_SESSION_BUDGET_USD={raw!r} is not a number; unset it or give e.g. 0.05."
        ) from None
    if value < 0:
        raise BadInput(f"ASSISTANT_SESSION_BUDGET_USD={raw!r} cannot be negative.")
    return value


def _switch(env: dict[str, str], name: str) -> bool:
    """An on/off setting: unset, "off", "0"... is off; "on", "1"... is on; else a clear error."""
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "off", "false", "no"):
        return False
    if raw in ("1", "on", "true", "yes"):
        return True
    raise BadInput(f"{name}={env.get(name)!r} is neither on nor off; unset it or give on.")
