"""Grounding without models: sentences, support, OCR values, scaffolding, history, routing."""

from __future__ import annotations

import json

import pytest

from assistant.catalog.entries import Catalog
from assistant.knowledge import grounding, picture_text
from assistant.routing.router import Router
from bench.answers_inputs import scaffolding
from models.base import Adapter, Message, Request, Result, Usage
from tests.test_cli import cli

MANUAL = """# Nimbus K2 Kettle

## Filling

The kettle holds 1.7 litres of water. Never fill it above the MAX mark.

## Warranty

The Nimbus K2 is covered by a warranty of 2 years
from the date of purchase.
"""
CITATIONS = [{"n": 1, "source": "manual.md", "location": "§ Filling", "text": MANUAL}]


def test_sentences_drop_headings_and_join_wrapped_lines():
    found = grounding.sentences(MANUAL)
    assert "The Nimbus K2 is covered by a warranty of 2 years from the date of purchase." in found
    assert not any("#" in s or s.startswith("Nimbus K2 Kettle") for s in found)


def test_the_sentence_that_answers_is_picked_first():
    pool = grounding.candidates(CITATIONS)
    quotes = grounding.pick_quotes("How long is the warranty?", pool)
    assert quotes[0].text.startswith("The Nimbus K2 is covered by a warranty") and quotes[0].n == 1
    # The embedder's view counts too: a paraphrase with no shared word can win.
    sims = [0.9 if "1.7 litres" in s else 0.1 for s, _ in pool]
    assert "1.7 litres" in grounding.pick_quotes("capacity?", pool, sims)[0].text


def test_a_sentence_that_points_back_is_read_with_the_one_before_it():
    manual = (
        "## Descaling\n\nIn hard water areas, descale the kettle every four weeks. Fill it "
        "with equal parts white vinegar and water. Never use bleach. This Kettle is not a toy."
    )
    found = grounding.sentences(manual)
    # The answer to "what should I descale it with?" shares no word with the question:
    # alone it was never picked, and the model said "a soft water descaler".
    assert found[0] == (
        "In hard water areas, descale the kettle every four weeks. "
        "Fill it with equal parts white vinegar and water."
    )
    # "Never use bleach." points nowhere; "This Kettle" names a thing, it does not point back.
    assert found[1:] == ["Never use bleach.", "This Kettle is not a toy."]
    # Paragraphs stay apart, and at most three sentences make one quote.
    two = grounding.sentences("The kettle boils water.\n\nIt clicks loudly.")
    assert two == ["The kettle boils water.", "It clicks loudly."]
    chain = grounding.with_antecedents(["A kettle.", "It boils.", "It clicks.", "It cools."])
    assert chain == ["A kettle. It boils. It clicks.", "It cools."]


def test_a_supported_reply_is_kept_with_its_quote_and_an_invented_one_is_not():
    quotes = grounding.pick_quotes("How much water does it hold?", grounding.candidates(CITATIONS))
    kept, how = grounding.rag_reply(
        "How much water does it hold?", "It holds 1.7 litres of water.", quotes, CITATIONS, True
    )
    assert how == "model" and kept.startswith("It holds 1.7 litres of water. [1]")
    # The quote is the sentence with the one after it that points back ("fill it").
    assert "> “The kettle holds 1.7 litres of water. Never fill it above the MAX mark.” [1]" in kept
    # A number the documents do not hold makes the reply unsupported: the quote is shown.
    wrong, how = grounding.rag_reply(
        "How much water does it hold?", "It holds 2.5 litres of water.", quotes, CITATIONS, True
    )
    assert how == "quote" and "2.5" not in wrong and "1.7 litres" in wrong
    # A claim stitched from two sentences is cut where it stops being supported.
    stitched, how = grounding.rag_reply(
        "How much water does it hold?",
        "The kettle holds 1.7 litres of water. The warranty covers limescale for 2 years.",
        quotes,
        CITATIONS,
        True,
    )
    assert how == "model" and "limescale" not in stitched


def test_support_counts_only_the_words_that_carry_facts():
    evidence = ["Open the roof vents when the greenhouse passes 27 degrees Celsius."]
    assert grounding.support("The vents should be opened at 27 degrees.", evidence) >= 0.75
    assert grounding.support("Close the door at 30 degrees.", evidence) == 0.0  # 30: not there
    assert grounding.support("Yes.", evidence) == 0.0


def test_nothing_that_answers_says_the_documents_do_not_say():
    quotes = grounding.pick_quotes("What colour is it?", grounding.candidates(CITATIONS))
    assert not grounding.answers_question("What colour is it?", quotes, similarity=0.3)
    assert grounding.answers_question("How long is the warranty?", quotes, similarity=0.7)
    reply, how = grounding.rag_reply("What colour is it?", "", quotes, CITATIONS, False)
    assert how == "not found" and reply.startswith("Your documents do not say.")
    assert "manual.md (§ Filling)" in reply


def test_values_are_read_from_ocr_lines_even_when_glued():
    lines = ["ACMESupplies Ltd", "InvoiceNo.INV-2093", "Date:2026-11-14", "total83.20EUR"]
    assert picture_text.find_in_ocr("What is the total amount?", lines).value == "83.20 EUR"
    assert picture_text.find_in_ocr("What is the invoice number?", lines).value == "INV-2093"
    assert picture_text.find_in_ocr("What is the date?", lines).value == "2026-11-14"
    ticket = ["BOARDINGPASS", "FlightLH1234", "GateB22", "Seat14C"]
    assert picture_text.find_in_ocr("Which gate?", ticket).value == "B22"
    assert picture_text.find_in_ocr("What is my seat?", ticket).value == "14C"
    receipt = ["HarborHardware", "Receipt88120", "Hammer12.99", "Total16.48"]
    assert picture_text.find_in_ocr("Which shop is it from?", receipt).value == "Harbor Hardware"
    assert picture_text.find_in_ocr("How much did I pay?", receipt).value == "16.48"
    assert picture_text.find_in_ocr("Is this a cat?", receipt) is None  # nothing asked for
    assert picture_text.find_in_ocr("What is the total?", ["Hello world"]) is None


def test_the_classifier_label_is_quoted_as_it_was_given():
    said = picture_text.picture_reply(
        "What is in this picture?", [("tiger cat", 0.38), ("tabby", 0.3)], []
    )
    assert "**tiger cat** (38%)" in said and "No readable text" in said
    assert picture_text.picture_reply("Is the cat happy?", [("tabby", 0.5)], []) is None
    # A value read by rule comes first, then what the readers saw; a listing is not repeated.
    seen = "r.png: looks like menu (4%). Text in it:\n- Total6.75"
    total = picture_text.picture_reply("What is the total?", [("menu", 0.04)], ["Total6.75"], seen)
    assert total == f"The total is **6.75** (read from the line “Total 6.75”).\n\n{seen}"
    listing = picture_text.picture_reply("What is this?", [("menu", 0.04)], ["Total6.75"], seen)
    assert seen not in listing and "**menu** (4%)" in listing


def test_scaffolding_is_stripped_and_the_bench_sees_none_left():
    echoed = (
        "Excerpts:\n<<<excerpt [4] from notes.md, line 3\n## Warranty\n>>>\n"
        "Question: How long is the warranty?\nAnswer with citations:\n"
        "Answer: Two years [1][5].<|im_end|>"
    )
    assert scaffolding(echoed, 2)  # the bench's own detector sees it
    clean = grounding.strip_scaffolding(echoed, 2)
    assert clean == "Warranty\nTwo years [1]."
    assert scaffolding(clean, 2) == []
    assert grounding.strip_scaffolding("Title\n=====\nbody", 0) == "Title\nbody"


def test_history_is_trimmed_to_the_last_exchanges_and_says_so():
    history = (Message("system", "Be brief."),) + tuple(
        Message(role, f"{role} {i}") for i in range(6) for role in ("user", "assistant")
    )
    kept, dropped = grounding.trim_history(history, 2)
    assert dropped == 4 and kept[0].role == "system"
    assert [m.content for m in kept[1:]] == ["user 4", "assistant 4", "user 5", "assistant 5"]
    assert grounding.trim_history(history, 10) == (history, 0)
    assert "4 oldest exchanges" in grounding.trimmed_note(4)


def test_follow_ups_go_to_the_stronger_model_and_small_talk_stays():
    router = Router(
        Catalog.load(), grounded=lambda: ("qwen2.5-coder-0.5b-instruct", "qwen (right 0.9 vs 0.4)")
    )
    alone = router.route(Request(text="Hello there!"))
    assert alone.task == "text" and alone.model == "smollm2-135m-instruct"
    follow = router.route(
        Request(
            text="What is its population?",
            history=(Message("user", "Capital of France?"), Message("assistant", "Paris.")),
        )
    )
    assert follow.model == "qwen2.5-coder-0.5b-instruct"
    assert "a follow-up that needs the earlier turns → qwen (right 0.9 vs 0.4)" in follow.reason
    # The person's own pick wins over routing by difficulty.
    picked = router.route(
        Request(text="And?", history=follow_history(), prefer=(("text", "smollm2-135m-instruct"),))
    )
    assert picked.model == "smollm2-135m-instruct"


def follow_history() -> tuple[Message, ...]:
    return (Message("user", "Hi"), Message("assistant", "Hello!"))


def test_ask_chat_continues_a_saved_chat_from_the_command_line(tmp_path, monkeypatch):
    from assistant.chats.conversations import Chats

    chats = Chats(tmp_path / "chats.sqlite")
    chat_id = chats.create("local")
    chats.add("local", chat_id, "user", "What is the capital of France?")
    chats.add("local", chat_id, "assistant", "Paris.")
    listed = cli("chats", "--json", home=tmp_path)
    assert json.loads(listed.stdout)[0]["id"] == chat_id
    # A grounded model every install has, whatever the stronger model can do here.
    monkeypatch.setenv("ASSISTANT_GROUNDED_MODEL", "smollm2-135m-instruct-fp32")
    out = cli(
        "ask", "What is its population?", "--chat", chat_id, "--route-only", "--json", home=tmp_path
    )
    route = json.loads(out.stdout)
    assert route["model"] == "smollm2-135m-instruct-fp32" and "follow-up" in route["reason"]
    missing = cli("ask", "hi", "--chat", "nope", "--route-only", home=tmp_path)
    assert missing.returncode == 2 and "There is no chat 'nope'" in missing.stderr


def test_the_chats_own_system_prompt_follows_the_grounded_instructions():
    history = (
        Message("system", "Answer in French."),
        Message("user", "Hi"),
        Message("assistant", "Salut !"),
    )
    built = grounding.with_system(grounding.GROUNDED_SYSTEM, history)
    assert built[0].role == "system" and built[0].content.endswith("\n\nAnswer in French.")
    assert built[0].content.startswith(grounding.GROUNDED_SYSTEM)
    assert [m.role for m in built] == ["system", "user", "assistant"]


def _memo_assistant(settings, fake_chat, heard: str):
    """An assistant whose recogniser hears ``heard`` in any recording, and a recording."""
    from tests.conftest import make_assistant

    class FakeASR(Adapter):
        family, tasks = "asr", ("asr",)

        def load(self):
            pass

        def run(self, request):
            return Result(text=heard, usage=Usage(2.0, 4, "audio_seconds"))

    assistant = make_assistant(
        settings.with_(grounded_model=("smollm2-135m-instruct-fp32",)),
        fake_chat,
        {"asr": FakeASR()},
    )
    memo = settings.home / "memo.wav"
    memo.write_bytes(b"RIFF0000WAVE")
    return assistant, memo


def test_a_voice_memo_is_answered_as_a_voice_note_by_the_grounded_model(settings, fake_chat):
    assistant, memo = _memo_assistant(settings, fake_chat, "Suggest a gift for my sister.")
    outcome = assistant.ask(Request(text="", attachments=(memo,)))
    assert [s.route.task for s in outcome.steps] == ["asr", "text"]
    assert outcome.steps[1].route.model == "smollm2-135m-instruct-fp32"
    assert "answers what was said" in outcome.steps[1].route.reason
    seen = fake_chat.seen[-1]
    # The stronger model reads it framed as the person's words (the chat model would not).
    assert seen.text == grounding.SAID + "Suggest a gift for my sister."
    assert seen.history[0].content == grounding.VOICE_SYSTEM


def test_a_spoken_note_is_restated_by_rule_and_no_text_model_runs(settings, fake_chat):
    from assistant.knowledge import notes

    heard = "Add coffee, apples and rice to my shopping list."
    assistant, memo = _memo_assistant(settings, fake_chat, heard)
    pieces = list(assistant.handle(Request(text="", attachments=(memo,))))
    outcome = pieces[-1]
    # One step (speech), no text model asked.
    assert outcome.route.task == "asr" and not outcome.steps and not fake_chat.seen
    reply = "For your shopping list: coffee, apples and rice."
    assert outcome.result.text == reply and notes.NOTE in outcome.result.notes
    assert "".join(p for p in pieces if isinstance(p, str)).endswith("\n" + reply)
    # With a question typed beside the memo, the question is what is answered.
    outcome = assistant.ask(Request(text="Which of these is the cheapest?", attachments=(memo,)))
    assert [s.route.task for s in outcome.steps] == ["asr", "text"]


@pytest.mark.parametrize(
    "said, reply",
    [
        ("Remind me to buy milk, eggs and bread.", "To remember: buy milk, eggs and bread."),
        (
            "Okay, remind me that my meeting moved to ten.",
            "To remember: your meeting moved to ten.",
        ),
        ("Note that I'm out on Friday", "To remember: you're out on Friday."),
        ("Don't forget to call my mum!", "To remember: call your mum."),
        (
            "Add batteries and a card to my shopping list.",
            "For your shopping list: batteries and a card.",
        ),
        ("Remind me to.", None),
        ("What is a good name for a kitten?", None),
        ("Please write a short thank you note to my neighbour.", None),
        ("Notebook prices?", None),
    ],
)
def test_a_spoken_note_is_what_to_keep_in_the_person_s_words(said, reply):
    from assistant.knowledge.notes import note_reply

    assert note_reply(said) == reply


def test_a_note_is_never_searched_in_the_documents():
    router = Router(Catalog.load(), documents=lambda request: (0.9, "garden.md"))
    assert router.classify(Request(text="Remind me to water the tomatoes."))[0] == "text"
    assert router.classify(Request(text="When do I water the tomatoes?"))[0] == "rag"


def test_a_memo_reply_that_repeats_its_instructions_is_cut_before_it_is_shown(settings):
    from tests.conftest import FakeChat

    echo = (
        "A good gift is a new novel. You're a helpful assistant. The user speaks to you "
        "through voice notes; reply to each note helpfully and briefly."
    )
    chat = FakeChat(
        [echo, "You are a helpful assistant. The user speaks to you through voice notes."]
    )
    assistant, memo = _memo_assistant(settings, chat, "Suggest a gift for my sister.")
    pieces = list(assistant.handle(Request(text="", attachments=(memo,))))
    shown = "".join(p for p in pieces if isinstance(p, str))
    assert shown.endswith("\nA good gift is a new novel.") and pieces[-1].result.text == (
        "A good gift is a new novel."
    )
    # Nothing but the instructions: what was heard is shown, and the note says why.
    outcome = assistant.ask(Request(text="", attachments=(memo,)))
    assert outcome.result.text == "I heard: “Suggest a gift for my sister.”"
    assert any("only repeated its instructions" in n for n in outcome.result.notes)


def test_cutting_echoed_instructions_keeps_the_rest_of_a_reply_as_it_was():
    told = grounding.VOICE_SYSTEM
    kept = "It costs 3.50 EUR.\n\n1. Milk\n2. Eggs"
    assert grounding.without_instructions(kept, told) == kept
    echoed = "You are a helpful assistant.\n\nIt costs 3.50 EUR."
    assert grounding.without_instructions(echoed, told) == "It costs 3.50 EUR."
