"""UI handlers with the fake model: the chat, the badge and the panel, without a server."""

from __future__ import annotations

from assistant.web.ui.app import build_app
from assistant.web.ui.format import SIZE_DEFAULT, badge, history_of, picture_options, text_of
from assistant.web.ui.layout import ONCE
from models.base import Request


def test_text_of_reads_every_content_shape():
    assert text_of("hi") == "hi"
    assert text_of({"type": "text", "text": "hi"}) == "hi"
    assert text_of([{"type": "text", "text": "a"}, {"type": "file", "file": {}}, "b"]) == "ab"


def test_the_picture_panel_untouched_leaves_each_model_its_own_steps_and_guidance():
    # What the panel sends when nobody changed it (Gradio sends 0 for its Numbers).
    untouched = picture_options(0, 0, -1, SIZE_DEFAULT, "", 0.6).given()
    assert "steps" not in untouched and "guidance" not in untouched
    chosen = picture_options(8, 1.0, 42, "512", " no text ", 0.6).given()
    assert chosen["steps"] == 8 and chosen["guidance"] == 1.0 and chosen["seed"] == 42
    assert chosen["width"] == chosen["height"] == 512.0 and chosen["negative"] == "no text"


def test_history_skips_badges_and_files():
    chat = [
        {"role": "user", "content": "I live in Berlin."},
        {"role": "user", "content": [{"type": "file", "file": {"path": "x.wav"}}]},
        {"role": "assistant", "content": "Nice."},
        {"role": "assistant", "content": "why...", "metadata": {"title": "smollm2 · text"}},
    ]
    assert [(m.role, m.content) for m in history_of(chat)] == [
        ("user", "I live in Berlin."),
        ("assistant", "Nice."),
    ]


def _respond(demo):
    event = next(f.fn for f in demo.fns.values() if f.api_name == "chat")
    return getattr(event, "handler", event)  # the handler behind with_request()


def test_respond_streams_then_shows_the_badge_and_the_panel(assistant, fake_chat):
    respond = _respond(build_app(assistant))
    updates = list(respond({"text": "What is the capital of France?", "files": []}, [], None))
    chat = updates[-1].chat
    assert chat[0] == {"role": "user", "content": "What is the capital of France?"}
    assert chat[1]["content"] == fake_chat.replies[0]
    assert chat[2]["metadata"]["title"].startswith("smollm2-135m-instruct · text")
    assert len(updates) > 3  # streamed, not delivered at once
    panel = updates[-1].panel
    assert panel[0][1] == "smollm2-135m-instruct · text" and panel[0][-1] == "ok"


def test_an_error_is_shown_as_a_message_not_raised(assistant):
    respond = _respond(build_app(assistant))
    chat = list(respond({"text": "  ", "files": []}, [], None))[-1].chat
    assert "empty" in chat[-2]["content"] and chat[-2]["content"].startswith("⚠️")
    assert chat[-1]["metadata"]["title"] == "rejected before routing"


def test_badge_of_an_ok_outcome_names_model_time_and_money(assistant):
    outcome = assistant.ask(Request(text="hi"))
    title, details = badge(outcome)
    assert "smollm2-135m-instruct · text" in title and "cloud" in title
    assert "plain question" in details and "estimate" in details


def test_rerun_asks_the_last_message_again_with_the_picked_model(assistant, fake_chat):
    demo = build_app(assistant)
    respond = _respond(demo)
    rerun = next(f.fn for f in demo.fns.values() if f.api_name == "rerun").handler
    chat = list(respond({"text": "first question", "files": []}, [], None))[-1].chat
    chat = list(respond({"text": "second question", "files": []}, chat, None))[-1].chat
    pictures = (None, None, -1, "model default", "", 0.6)  # steps ... strength: untouched
    updates = list(
        rerun(chat, None, False, "", "none", "", *pictures, ONCE, "qwen2.5-1.5b-instruct", "auto")
    )
    rerun_chat = updates[-1].chat
    users = [m["content"] for m in rerun_chat if m["role"] == "user"]
    assert users == ["first question", "second question"]  # replaced, not appended
    assert fake_chat.seen[-1].text == "second question"
    assert fake_chat.seen[-1].prefer == (("text", "qwen2.5-1.5b-instruct"),)
    assert "qwen2.5-1.5b-instruct picked for text" in rerun_chat[-1]["content"]


def test_a_rerun_keeps_both_answers_saved_and_the_model_reads_neither(assistant, fake_chat):
    from assistant.web.ui.chats import chatbot_messages

    fake_chat.replies = ["Red.", "Blue.", "Green."]  # each answer its own
    demo = build_app(assistant)
    respond = _respond(demo)
    rerun = next(f.fn for f in demo.fns.values() if f.api_name == "rerun").handler
    first = list(respond({"text": "Name a colour.", "files": []}, [], None))[-1]
    pictures = (None, None, -1, SIZE_DEFAULT, "", 0.6)
    inputs = (first.chat_id, False, "", "none", "", *pictures, ONCE)
    live = list(rerun(first.chat, *inputs))[-1].chat
    # The model is asked the question afresh: not after it and its own earlier answer.
    first_answer = assistant.chats.turns("local", first.chat_id)[1].content
    seen = [m.content for m in fake_chat.seen[-1].history]
    assert "Name a colour." not in seen and first_answer not in seen, seen
    turns = assistant.chats.turns("local", first.chat_id)
    assert [t.role for t in turns] == ["user", "assistant", "assistant"]  # asked once
    reopened = chatbot_messages(turns)
    for chat in (live, reopened):
        titles = [(m.get("metadata") or {}).get("title", "") for m in chat]
        assert sum(t.startswith("Answer 1 of 2") for t in titles) == 1, titles
        # The newest answer is headed as such, not folded.
        assert [text_of(m["content"]) for m in chat].count("**Answer 2 of 2**") == 1
        assert [m["content"] for m in chat if m["role"] == "user"] == ["Name a colour."]
    # Going on, the model reads the question and the newest answer, once each.
    list(respond({"text": "Another?", "files": []}, live, first.chat_id))
    seen = [m.content for m in fake_chat.seen[-1].history]
    newest = assistant.chats.turns("local", first.chat_id)[2].content
    assert seen.count("Name a colour.") == 1 and first_answer not in seen, seen
    assert newest in seen, seen


def test_a_request_that_evicted_a_model_says_so_on_its_badge(assistant):
    outcome = assistant.ask(Request(text="hi"))
    from dataclasses import replace

    title, _ = badge(replace(outcome, load_s=1.2, evicted=("whisper-base",)))
    assert "cold load 1.2s (unloaded whisper-base)" in title


def test_stop_before_any_word_says_so_instead_of_keeping_the_waiting_line():
    from assistant.web.ui.format import WAITING, with_stopped_note

    for waiting in (WAITING, "*Loading SmolLM2-135M-Instruct (98 MB)…*"):
        chat = with_stopped_note(
            [{"role": "user", "content": "q"}, {"role": "assistant", "content": waiting}]
        )
        assert chat[-1]["content"] == "*(stopped before the reply began)*"
    said = "You said: buy milk.\n\n*Loading SmolLM2-135M-Instruct (98 MB)…*"
    chat = with_stopped_note([{"role": "assistant", "content": said}])
    assert chat[-1]["content"].startswith("You said: buy milk.\n\n*(stopped:")


def test_a_folded_answer_keeps_its_picture_below_the_fold(tmp_path):
    from assistant.chats.conversations import Turn
    from assistant.web.ui.chats import chatbot_messages
    from assistant.web.ui.format import answers_in, fold_answers

    drawn = tmp_path / "drawn.png"
    drawn.write_bytes(b"\x89PNG")
    meta = {"model": "demo-scenes", "reason": "asks for a picture", "files": [str(drawn)]}
    turns = [
        Turn("user", "Draw a red circle", {}),
        Turn("assistant", "Here it is.", meta),
        Turn("assistant", "Here it is again.", {**meta, "files": []}),
    ]
    reopened = chatbot_messages(turns)
    fold = next(i for i, m in enumerate(reopened) if text_of(m["content"]) == "Here it is.")
    assert reopened[fold]["metadata"]["title"].startswith("Answer 1 of 2")
    assert reopened[fold + 1]["content"] == {"path": str(drawn)}  # shown just below its fold
    assert [text_of(m["content"]) for m in reopened].count("**Answer 2 of 2**") == 1
    # Live, the browser sends the picture back as a "file" part; a second re-run
    # folds the already folded answer again, its picture still right below it.
    live = [{"role": "assistant", "content": [{"type": "file", "file": {"path": str(drawn)}}]}]
    once = fold_answers([{"role": "assistant", "content": "Here it is."}, *live, reopened[-1]])
    twice = fold_answers(once + [{"role": "assistant", "content": "Again."}, reopened[-1]])
    assert answers_in(once) == 1 and answers_in(twice) == 2
    titles = [(m.get("metadata") or {}).get("title", "") for m in twice]
    assert titles[0].startswith("Answer 1 of 3") and titles[2].startswith("Answer 2 of 3")
    assert twice[1]["content"] == live[0]["content"], twice
