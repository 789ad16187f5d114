"""The router: which task a request is, and which model serves it, and why.

Rules decide what rules decide well: the kind of file attached. The words
decide the rest through the intent classifier (assistant/routing/intent.py): a new
picture or an answer in words; for an attached image, a change to it or a
question about it. Every decision carries a reason a person can read, a
confidence and the models it passed over.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from assistant.catalog.entries import Catalog
from assistant.knowledge.notes import is_note
from assistant.routing import kinds
from assistant.routing.intent import IntentClassifier
from models.base import BadInput, ModelUnavailable, Request, Task

# A picture costs far more than a sentence, and a wrong one helps nobody:
# below this confidence the words are answered in words.
PICTURE_CONFIDENCE = 0.6
# "a red circle on a blue background": the demo model's own example (and any
# scene said that way) is a picture, with or without "draw". A rule, because
# the n-gram classifier cannot learn it without colour words and "back…"
# starting to draw ("green tea", "are you back?" did when exemplars were tried).
_COLOUR = r"(?:red|green|blue|yellow|purple|orange|white|black|pink|brown|grey|gray)"
SCENE = re.compile(
    rf"\b{_COLOUR}\s+(?:circle|square|triangle|star|rectangle|dot)s?\b.*"
    rf"\bon\s+(?:an?\s+)?{_COLOUR}\s+background\b",
    re.IGNORECASE,
)
# Cosine between a question and the closest chunk of the user's documents
# (all-MiniLM-L6-v2) above which the documents are searched. Measured by
# `bench router`: questions about the bench's documents score 0.45-0.8,
# unrelated questions with the same documents present 0.0-0.3.
DOCUMENT_MATCH = 0.4

# The file kinds are one table (kinds.py). These names stay for the flow's
# ingest, which transcribes what is heard (audio, and a video's sound) and
# reads pictures: AUDIO here is every suffix speech recognition takes.
AUDIO = kinds.HEARD
IMAGE = kinds.IMAGE


@dataclass(frozen=True)
class RouteDecision:
    task: Task  # one of catalog.TASKS
    model: str  # catalog id
    reason: str  # one sentence a person understands
    confidence: float  # 0..1, how sure the rule is
    alternatives: tuple[dict, ...] = ()  # [{"model", "task", "why_not"}]

    def as_dict(self) -> dict:
        d = asdict(self)
        d["alternatives"] = list(self.alternatives)
        return d


class Router:
    def __init__(
        self,
        catalog: Catalog,
        preferred: dict[str, str] | None = None,
        documents: Callable[[Request], tuple[float, str] | None] | None = None,
        grounded: Callable[[], tuple[str, str] | None] | None = None,
        weights_dir: Path | None = None,
    ):
        self.catalog = catalog
        # Where prepared weights live: with it, a task no model here can run
        # is refused before anything starts (None: not checked, as in tests).
        self.weights_dir = weights_dir
        self.preferred = preferred or {}  # task -> catalog id chosen by settings
        # task -> why its preferred model was chosen (an eval), quoted on the route card.
        self.because: dict[str, str] = {}
        # How close a question is to the asker's documents: (cosine, document
        # name), or None when they have none. Supplied by the app.
        self.documents = documents
        # The stronger model for work that must hold to what it was given, and
        # why (its measured quality and cost), or None when none is installed.
        self.grounded = grounded
        self._intent: IntentClassifier | None = None  # built on first use, not at start

    @property
    def intent(self) -> IntentClassifier:
        if self._intent is None:
            self._intent = IntentClassifier.load()
        return self._intent

    def classify(self, request: Request) -> tuple[str, str, float]:
        """(task, reason, confidence) from attachments first, then the words."""
        if request.task:
            return request.task, f"the caller asked for {request.task}", 1.0
        found = {kinds.kind_of(p) for p in request.attachments}
        text = request.text.strip()
        if "audio" in found:
            return "asr", "audio attached → transcribe it first", 0.99
        if "video" in found:
            return "asr", "video attached → transcribe its sound first", 0.99
        if "image" in found:
            if not text:
                return "vision", "image attached, no words → describe it", 0.95
            task, confidence, _ = self.intent.classify(text, ("image_edit", "vision"))
            if task == "image_edit":
                return task, "image attached + words asking to change it → image edit", confidence
            return task, "image attached + a question about it → vision", confidence
        if "document" in found:
            return "rag", "document attached → answer from the document", 0.9
        if "other" in found:
            names = ", ".join(p.name for p in request.attachments if kinds.kind_of(p) == "other")
            raise BadInput(
                f"Unsupported file type: {names}. Attach recordings or videos "
                f"({kinds.listed('audio', 'video')}), "
                f"images ({kinds.listed('image')}) or documents ({kinds.listed('document')})."
            )
        if SCENE.search(text):
            return "image_generation", "describes shapes on a coloured background → a picture", 0.9
        task, confidence, _ = self.intent.classify(text, ("image_generation", "text"))
        if task == "image_generation" and confidence >= PICTURE_CONFIDENCE:
            return task, "asks for a new picture → image generation", confidence
        if is_note(text):  # "remind me to water the tomatoes" is not asking the documents
            return "text", "a note to keep → text model, not your documents", 0.9
        match = self.documents(request) if self.documents and text else None
        if match and match[0] >= DOCUMENT_MATCH:
            similarity, name = match
            return (
                "rag",
                f"matches your documents ('{name}', similarity {similarity:.2f}) "
                "→ answer from them",
                round(min(0.99, 0.5 + similarity - DOCUMENT_MATCH), 2),
            )
        aside = f"; your documents do not cover it (best {match[0]:.2f})" if match else ""
        if task == "image_generation":
            return (
                "text",
                f"unclear whether a picture is wanted → text model{aside}",
                1 - confidence,
            )
        return "text", f"plain question → text model{aside}", confidence

    def route(self, request: Request) -> RouteDecision:
        task, reason, confidence = self.classify(request)
        if request.model:
            entry = self.catalog.get(request.model)
            if task == "rag" and "text" in entry.tasks:
                # The person chose a chat model: it answers, and says what it did not read.
                task = "text"
                reason = f"{reason}; answered by the chosen {entry.id} without your documents"
            if task not in entry.tasks:
                raise BadInput(
                    f"Model '{entry.id}' does not serve {task} requests ({reason}); it serves "
                    f"{', '.join(entry.tasks)}. Pick a {task} model: "
                    + ", ".join(e.id for e in self.catalog.for_task(task))
                )
            reason = f"{reason}; you chose {entry.id}"
            confidence = 1.0
        else:
            picked = dict(request.prefer).get(task)
            if picked:
                entry = self.catalog.get(picked)
                if task not in entry.tasks:
                    raise BadInput(
                        f"Model '{entry.id}' was picked for {task} but does not serve it; "
                        "pick another in the Models panel."
                    )
                reason = f"{reason}; {entry.id} picked for {task}"
            else:
                entry = self.catalog.default_for(task, self.preferred.get(task))
                if (
                    entry is not None
                    and task in self.because
                    and entry.id == self.preferred.get(task)
                ):
                    reason = f"{reason}; {entry.id}: {self.because[task]}"
                # A model a person chose after an eval (``because``) is kept for everything.
                stronger = (
                    self.grounded()
                    if self.grounded and task == "text" and task not in self.because
                    else None
                )
                if stronger and _follow_up(request):
                    # Routed by difficulty: a follow-up must use the earlier turns,
                    # which the small chat model measurably does not.
                    entry = self.catalog.get(stronger[0])
                    reason = f"{reason}; a follow-up that needs the earlier turns → {stronger[1]}"
            if entry is None:
                raise BadInput(f"No model in the catalog serves {task} requests.")
            if task == "image_edit" and self.weights_dir is not None:
                entry = self._loadable(task, entry)
        alternatives = tuple(
            {"model": e.id, "task": task, "why_not": "not the default for this task"}
            for e in self.catalog.for_task(task)
            if e.id != entry.id
        )
        return RouteDecision(task, entry.id, reason, confidence, alternatives)

    def _loadable(self, task: str, entry):
        """``entry``, or one that can load now; none at all is said before anything runs."""
        if entry.availability(self.weights_dir)[0]:
            return entry
        candidates = [e for e in self.catalog.for_task(task) if e.built]
        for other in candidates:
            if other.availability(self.weights_dir)[0]:
                return other
        reasons: dict[str, list[str]] = {}  # one reason, said once for the models it fits
        for e in candidates:
            reasons.setdefault(e.availability(self.weights_dir)[1], []).append(e.id)
        why = "; ".join(f"{', '.join(ids)}: {reason}" for reason, ids in reasons.items())
        refused = ModelUnavailable(
            f"No model that can {TASK_WORDS.get(task, task)} can load on this machine ({why}). "
            "Ask for a new picture instead, or install one (python -m assistant models)."
        )
        refused.task = task  # the ledger row says what was asked, though nothing was routed
        raise refused


TASK_WORDS = {"image_edit": "edit a picture"}


def _follow_up(request: Request) -> bool:
    return any(m.role == "assistant" for m in request.history)
