"""The steps one request becomes: admitted, routed, run, and followed where it asks for more.

- speech, then its transcript routed again (unless only the transcript was asked for);
- a picture's readers (classifier + OCR), then an answer from what they saw;
- retrieval, then the grounded answer (assistant/flow/retrieval.py);
- any answer, then read aloud when the request asks to be spoken.

Each step is its own ledger row, linked to the first by parent id.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Generator, Iterator
from dataclasses import replace

from assistant.accounting.limits import check_daily_quota, check_public, within_session_budget
from assistant.flow.context import Context
from assistant.flow.grounded import grounded_decision, is_stronger
from assistant.flow.outcome import Outcome, add_costs, chain
from assistant.flow.pictures import as_redraw
from assistant.flow.pool import Loading
from assistant.flow.primed import primed
from assistant.flow.requests import checked, with_transcribe_flag
from assistant.flow.retrieval import rag, routing_load
from assistant.flow.step import Work, priced, reject, run_step, silent
from assistant.knowledge import grounding, notes, picture_text
from assistant.routing.router import RouteDecision
from models.base import AssistantError, Progress, Request


def handle(
    a: Context, request: Request, source: str, cancel: threading.Event | None
) -> Iterator[str | Progress | Loading | Outcome]:
    """Yield text pieces as the model produces them, then one Outcome.

    Between them: a Loading before a model that is not resident loads, and a
    picture's Progress per step; only the text pieces are the reply."""
    outcome = yield from answer(a, request, source, cancel)
    text = outcome.result.text if outcome.result else ""
    if request.speak and outcome.status == "ok" and text:
        outcome = yield from speak(a, outcome, request, source, cancel)
    yield outcome


def answer(
    a: Context, request: Request, source: str, cancel: threading.Event | None
) -> Generator[str, None, Outcome]:
    """Admit the request (limits, budget, access), route it, run it and what follows it."""
    request_id = uuid.uuid4().hex
    decision = None
    try:
        # First: malformed requests count against the rate too.
        a.limiter.check(request.user)
        check_daily_quota(a.settings, a.ledger, request.user)
        request = with_transcribe_flag(checked(a.settings, request))
        request = as_redraw(a, request)
        announced = routing_load(a, request)
        if announced:
            yield announced
        decision = a.router.route(request)
        decision = within_session_budget(a.settings, a.ledger, a.catalog, request, decision)
        # After the budget's choice: the model that will run is the one checked.
        entry = a.catalog.entries.get(decision.model)
        check_public(a.settings, decision.task, entry.backend if entry else "")
        decision = priced(a, decision)
    except AssistantError as err:
        # A budget refusal was routed first: its row names the task and model.
        return reject(a, request_id, request, source, err, decision=decision)
    # A question about a picture is answered first and the readers' findings follow,
    # so their listing is held back until the answer is known (picture_answer).
    readers_first = (
        decision.task == "vision"
        and entry is not None
        and entry.backend == "classifier-ocr"
        and bool(request.text.strip())
    )
    first = yield from _routed(
        a,
        request_id,
        None,
        primed(a, request, decision),
        decision,
        source,
        cancel,
        work=silent if readers_first else None,
    )
    said = first.result.text if first.result else ""
    if not (first.status == "ok" and decision.task in ("asr", "vision") and said):
        return first
    if decision.task == "vision":
        if entry and entry.backend != "classifier-ocr":
            return first  # a vision-language model answered the question itself
        return (yield from picture_answer(a, request, first, source, cancel))
    if request.transcribe_only:
        return first
    return (yield from _speech_answer(a, request, first, source, cancel))


def _routed(
    a: Context,
    request_id: str,
    parent_id: str | None,
    request: Request,
    decision: RouteDecision,
    source: str,
    cancel: threading.Event | None,
    work: Work | None = None,
) -> Generator[str, None, Outcome]:
    if decision.task == "rag":
        return (yield from rag(a, request_id, parent_id, request, decision, source, cancel))
    return (yield from run_step(a, request_id, parent_id, request, decision, source, cancel, work))


def _speech_answer(
    a: Context, request: Request, first: Outcome, source: str, cancel: threading.Event | None
) -> Generator[str, None, Outcome]:
    """The transcript routed again as a child request: its own ledger row, linked to the first."""
    question = request.text.strip()
    said = first.result.text
    kept = None if question else notes.note_reply(said)
    if kept is not None:  # a note to keep: restated by rule, see knowledge/notes.py
        yield "\n" + kept
        result = replace(first.result, text=kept, notes=first.result.notes + (notes.NOTE,))
        return replace(first, result=result)
    text = f"{question}\n\n{said}" if question else said
    # A memo with no instruction: told it is a voice note, Qwen2.5-Coder answered all 8 of
    # bench answers' memos (without it, "I'm sorry, but I can't assist with that" to 3).
    history = (
        request.history
        if question
        else grounding.with_system(grounding.VOICE_SYSTEM, request.history)
    )
    follow = Request(
        text=text,
        history=history,
        session_id=request.session_id,
        prefer=request.prefer,
        max_new_tokens=request.max_new_tokens,
        temperature=request.temperature,
        user=request.user,
        options=request.options,
    )
    yield "\n"
    child_id = uuid.uuid4().hex
    try:
        follow = checked(a.settings, follow)
        decision = a.router.route(follow)  # routed on the words alone
        if decision.task == "text":
            decision = grounded_decision(a, request, "answers what was said", decision)
            if not question and is_stronger(a, decision.model):
                follow = replace(follow, text=grounding.SAID + said)  # see grounding.SAID
    except AssistantError as err:
        second = reject(a, child_id, follow, source, err, parent_id=first.request_id)
    else:
        if decision.task == "text" and not question:
            second = yield from _memo_reply(a, child_id, first, follow, decision, source, cancel)
        else:
            second = yield from _routed(
                a, child_id, first.request_id, follow, decision, source, cancel
            )
    return chain(first, second)


def _memo_reply(
    a: Context,
    child_id: str,
    first: Outcome,
    follow: Request,
    decision: RouteDecision,
    source: str,
    cancel: threading.Event | None,
) -> Generator[str, None, Outcome]:
    """A memo's reply, shown once checked: a small model may repeat its voice-note
    instructions (SmolLM2 did), and those sentences go before anyone sees them."""
    second = yield from run_step(
        a, child_id, first.request_id, follow, decision, source, cancel, work=silent
    )
    if second.status != "ok":
        return second
    told = " ".join(m.content for m in follow.history if m.role == "system")
    reply = grounding.without_instructions(second.result.text, told)
    notes_ = second.result.notes
    if not reply:
        reply = f"I heard: “{first.result.text.strip()}”"
        notes_ += ("The text model only repeated its instructions, so what was heard is shown.",)
    yield reply
    return replace(second, result=replace(second.result, text=reply, notes=notes_))


def picture_answer(
    a: Context, request: Request, first: Outcome, source: str, cancel: threading.Event | None
) -> Generator[str, None, Outcome]:
    """Answer a question about a picture from what the classifier and OCR saw.

    An amount, date, code or name asked for is read from the OCR lines by
    rule, and what the picture shows is the classifier's own labels: no
    model can "improve" them. Other questions go to the grounded text
    model with the labels and lines as short plain lists; a reply whose
    words the readers did not see is replaced by their findings. The
    answer comes first, then what the readers saw (the readers' step ran
    silently: see ``answer``).
    """
    from models.vision import read_description

    question = request.text.strip()
    findings = first.result.text
    seen = read_description(findings)
    if not question or not seen:
        if question:  # held back for an answer that cannot be made: shown now
            yield findings
        return first  # the description is the answer
    labels = [x for _, found, _ in seen for x in found]
    lines = [x for _, _, found in seen for x in found]
    ruled = picture_text.picture_reply(question, labels, lines, findings)
    if ruled is not None:
        yield ruled
        note = "Answered by rule from what the picture's readers saw; no text model ran."
        return replace(
            first, result=replace(first.result, text=ruled, notes=(first.result.notes + (note,)))
        )
    history, dropped = grounding.trim_history(request.history, a.settings.history_turns)
    follow = Request(
        text=picture_text.picture_prompt(question, labels, lines),
        history=grounding.with_system(picture_text.PICTURE_SYSTEM, history),
        session_id=request.session_id,
        user=request.user,
        max_new_tokens=request.max_new_tokens,
        temperature=request.temperature,
    )
    decision = grounded_decision(a, request, "answers from what the picture's readers saw")
    second = yield from run_step(
        a, uuid.uuid4().hex, first.request_id, follow, decision, source, cancel, work=silent
    )
    if second.status == "ok":
        reply = grounding.strip_scaffolding(second.result.text)
        evidence = lines + [label for label, _ in labels]
        notes = (grounding.trimmed_note(dropped),) if dropped else ()
        if grounding.support(reply, evidence, question) < grounding.SUPPORT_THRESHOLD:
            reply = picture_text.picture_facts(labels, lines)
            notes += (
                "The text model's reply held words the picture's readers did not "
                "see, so their findings are shown instead.",
            )
        else:
            reply = f"{reply}\n\n{findings}"
        yield reply
        second = replace(
            second, result=replace(second.result, text=reply, notes=second.result.notes + notes)
        )
    else:
        yield findings  # the text model failed: what the readers saw is still worth showing
    return chain(first, second)


def speak(
    a: Context, answer: Outcome, request: Request, source: str, cancel: threading.Event | None
) -> Generator[str, None, Outcome]:
    """Read the answer aloud as a linked step; a failure is said, the answer kept."""
    entry = a.catalog.default_for("tts")
    decision = RouteDecision("tts", entry.id, "you asked for a spoken reply", 1.0)
    spoken_request = Request(text=answer.result.text, session_id=request.session_id)
    spoken = yield from run_step(
        a, uuid.uuid4().hex, answer.request_id, spoken_request, decision, source, cancel
    )
    steps = answer.steps or (answer,)
    files = answer.result.files + (spoken.result.files if spoken.result else ())
    return replace(
        answer,
        result=replace(answer.result, files=files),
        steps=steps + (spoken,),
        cost=add_costs(answer.cost, spoken.cost),
        # The answer stands; a voice that failed is reported beside it.
        error=None if spoken.status == "ok" else f"Spoken reply failed: {spoken.error}",
    )
