"""Saved chats, system prompts and templates: persistence, ownership, bad input.

The tests taking ``open_db`` run on SQLite and on PostgreSQL (tests/conftest.py).
"""

from __future__ import annotations

import json

import pytest

from assistant.chats.conversations import (
    Chats,
    Template,
    apply_template,
    load_templates,
    parse_variables,
)
from assistant.web.ui.app import build_app
from models.base import BadInput, Message


def test_a_chat_comes_back_after_a_restart_with_its_system_prompt(open_db):
    chats = Chats(open_db("chats.sqlite"))
    chat = chats.create("ana")
    chats.set_system_prompt("ana", chat, "Answer like a pirate.")
    chats.add("ana", chat, "user", "Where is the treasure?")
    chats.add("ana", chat, "assistant", "Under the palm, matey.", {"model": "m", "status": "ok"})
    chats.add("ana", chat, "user", "And the map?")
    chats.add("ana", chat, "assistant", "⚠️ The model failed", {"status": "error"})
    del chats

    again = Chats(open_db("chats.sqlite"))  # a new process would do exactly this
    [info] = again.list("ana")
    assert info.title == "Where is the treasure?"  # named by its first question
    history = again.history("ana", chat)
    assert history[0] == Message("system", "Answer like a pirate.")
    # The failed reply stays visible in the chat but not in what the model sees.
    assert [m.content for m in history[1:]] == [
        "Where is the treasure?",
        "Under the palm, matey.",
        "And the map?",
    ]
    assert len(again.turns("ana", chat)) == 4


def test_a_message_of_attachments_alone_is_named_by_what_was_heard(open_db):
    # A voice memo sent with no words kept the sidebar's "New chat" for good.
    chats = Chats(open_db("chats.sqlite"))
    chat = chats.create("ana")
    chats.add("ana", chat, "user", "", {"files": ["memo.wav"]})
    assert chats.info("ana", chat).title == "New chat"
    heard = "[00:00–00:02] Remind me to call the dentist.\n\nTo remember: call the dentist."
    chats.add("ana", chat, "assistant", heard)
    assert chats.info("ana", chat).title == "Remind me to call the dentist."  # no times
    chats.add("ana", chat, "user", "And the vet?")
    assert chats.info("ana", chat).title == "Remind me to call the dentist."
    # A long first line is cut between words, and says so.
    long = chats.create("ana")
    asked = "Please tell me everything about the history of the city of Lyon"
    chats.add("ana", long, "user", asked)
    assert chats.info("ana", long).title == asked[:58] + "…"  # "…the city of…"


def test_chats_belong_to_their_user(open_db):
    chats = Chats(open_db("chats.sqlite"))
    chat = chats.create("ana")
    assert chats.list("bob") == []
    for attempt in (
        lambda: chats.turns("bob", chat),
        lambda: chats.delete("bob", chat),
        lambda: chats.rename("bob", chat, "mine now"),
    ):
        with pytest.raises(BadInput):
            attempt()
    assert chats.info("ana", chat).title == "New chat"


def test_rename_delete_and_export(open_db):
    chats = Chats(open_db("chats.sqlite"))
    chat = chats.create("ana")
    chats.add("ana", chat, "user", "Hi there")
    chats.add("ana", chat, "assistant", "Hello!", {"model": "smollm2-135m-instruct"})
    chats.rename("ana", chat, "  Greetings \n ")
    assert chats.info("ana", chat).title == "Greetings"
    with pytest.raises(BadInput, match="empty"):
        chats.rename("ana", chat, "   ")
    md = chats.export("ana", chat, "md")
    assert md.startswith("# Greetings") and "**You:**" in md and "Hello!" in md
    data = json.loads(chats.export("ana", chat, "json"))
    assert data["messages"][1] == {
        "role": "assistant",
        "content": "Hello!",
        "model": "smollm2-135m-instruct",
    }
    with pytest.raises(BadInput):
        chats.export("ana", chat, "pdf")
    chats.delete("ana", chat)
    assert chats.list("ana") == []
    with pytest.raises(BadInput, match="no chat"):
        chats.turns("ana", chat)
    # Its messages went with it (ON DELETE CASCADE, on both databases).
    assert chats.db.all("SELECT seq FROM messages WHERE chat_id = ?", (chat,)) == []


def test_a_chats_file_from_before_the_numbered_schema_is_adopted(tmp_path):
    import sqlite3

    old = sqlite3.connect(tmp_path / "chats.sqlite")
    old.executescript(
        "CREATE TABLE chats (id TEXT PRIMARY KEY, user TEXT NOT NULL, title TEXT NOT NULL,"
        " system_prompt TEXT NOT NULL DEFAULT '', created REAL NOT NULL, updated REAL NOT NULL);"
        "CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, chat_id TEXT NOT NULL"
        " REFERENCES chats(id) ON DELETE CASCADE, role TEXT NOT NULL, content TEXT NOT NULL,"
        " meta TEXT, created REAL NOT NULL);"
        "INSERT INTO chats VALUES ('c1', 'ana', 'Old chat', '', 1.0, 1.0);"
        "INSERT INTO messages (chat_id, role, content, created) VALUES ('c1', 'user', 'hi', 1.0);"
    )
    old.commit()
    old.close()
    chats = Chats(tmp_path / "chats.sqlite")
    assert [c.title for c in chats.list("ana")] == ["Old chat"]
    assert [t.content for t in chats.turns("ana", "c1")] == ["hi"]
    assert chats.db.all("SELECT version FROM chats_schema_version") == [(1,)]


FEW = Template(
    "sent",
    "Sentiment",
    "Review: {text}\nSentiment:",
    "Label reviews.",
    (("Great!", "positive"), ("Awful.", "negative")),
)


def test_a_few_shot_template_puts_its_examples_before_the_conversation():
    history = (Message("system", "Be brief."), Message("user", "hi"), Message("assistant", "hey"))
    text, out = apply_template(FEW, "Meh, fine.", {}, history)
    assert text == "Review: Meh, fine.\nSentiment:"
    assert out[0] == Message("system", "Be brief.\n\nLabel reviews.")
    assert [m.content for m in out[1:5]] == [
        "Review: Great!\nSentiment:",
        "positive",
        "Review: Awful.\nSentiment:",
        "negative",
    ]
    assert out[5:] == history[1:]
    assert FEW.shots == "few-shot (2)"


def test_a_missing_template_variable_is_a_clear_message():
    summary = Template("s", "Summarise", "Summarise in {sentences} sentences:\n{text}")
    with pytest.raises(BadInput, match="needs a value for sentences.*sentences=") as err:
        apply_template(summary, "long text", {}, ())
    assert "Template variables" in str(err.value)
    assert apply_template(summary, "x", {"sentences": "2"}, ())[0].startswith("Summarise in 2")
    with pytest.raises(BadInput, match="name=value"):
        parse_variables("just words")


def test_builtin_templates_load_and_a_broken_user_file_is_named(tmp_path):
    templates = load_templates(tmp_path)
    assert {"summarise", "translate", "sentiment"} <= set(templates)
    assert {t.shots for t in templates.values()} >= {"zero-shot", "one-shot", "few-shot (3)"}
    (tmp_path / "templates.json").write_text("{not json")
    with pytest.raises(BadInput, match="templates.json"):
        load_templates(tmp_path)


def _fn(demo, name):
    fn = next(f.fn for f in demo.fns.values() if f.api_name == name)
    return getattr(fn, "handler", fn)  # the handler behind app.with_request()


def test_the_chat_handler_saves_both_turns_and_records_the_template(assistant, fake_chat):
    respond = _fn(build_app(assistant), "chat")
    last = list(
        respond({"text": "I love it", "files": []}, [], None, False, "Be kind.", "sentiment", "")
    )[-1]
    chat_id = last.chat_id
    turns = assistant.chats.turns("local", chat_id)
    assert [t.role for t in turns] == ["user", "assistant"]
    assert turns[0].content == "I love it" and turns[0].meta["template"] == "sentiment"
    assert turns[1].content == "Paris is the capital of France."
    # The model saw the few-shot prompt; the ledger recorded how it was made.
    seen = fake_chat.seen[-1]
    assert seen.text.startswith("Review: I love it") and seen.history[0].role == "system"
    [row] = [r for r in assistant.ledger.rows(limit=5) if r["prompt"]]
    expected = {
        "chat": chat_id,
        "system_prompt": "Be kind.",
        "template": "sentiment",
        "shots": "few-shot (3)",
    }
    assert json.loads(row["prompt"]) == expected


def test_a_template_error_keeps_the_message_and_writes_nothing(assistant):
    respond = _fn(build_app(assistant), "chat")
    message = {"text": "a long article", "files": []}
    updates = list(respond(message, [], None, False, "", "summarise", ""))
    box = updates[-1].box
    assert box.value == message  # back in the box, to fix and resend
    assert all(not assistant.chats.turns("local", c.id) for c in assistant.chats.list("local"))


def test_stop_keeps_the_partial_reply_and_finishes_the_ledger_row(assistant, fake_chat):
    fake_chat.replies = ["one two three four five six seven eight"]
    respond = _fn(build_app(assistant), "chat")
    updates = respond({"text": "What is the capital of France?", "files": []}, [], None)
    chat_id = next(updates).chat_id
    next(updates)  # the first streamed word is on screen
    updates.close()  # what Gradio does when the Stop button cancels the event
    turns = assistant.chats.turns("local", chat_id)
    assert turns[-1].role == "assistant" and turns[-1].meta.get("stopped") is True, turns
    assert turns[-1].content.startswith("one")
    [row] = assistant.ledger.rows(limit=1)
    # "stopped", with the words produced before the Stop (the fake model's unit).
    assert row["status"] == "stopped" and row["finished_at"] is not None


def test_invalid_utf8_and_control_characters_are_cleaned_and_the_chat_kept(assistant, fake_chat):
    # Invalid UTF-8 reaches Python as lone surrogates (surrogateescape, or a JSON
    # "\udce9"); the real tokenizer raised TypeError on them and SQLite refuses them.
    raw = b"caf\xe9 \x1b[31mred\x00".decode("utf-8", errors="surrogateescape")
    respond = _fn(build_app(assistant), "chat")
    last = list(respond({"text": raw, "files": []}, [], None, False, "sys\udcff", "none", ""))[-1]
    chat_id = last.chat_id
    turns = assistant.chats.turns("local", chat_id)
    assert [t.content for t in turns] == ["caf\ufffd [31mred", "Paris is the capital of France."]
    assert fake_chat.seen[-1].text == "caf\ufffd [31mred"
    assert fake_chat.seen[-1].history[0].content == "sys\ufffd"
    assert assistant.chats.list("local")[0].title == "caf\ufffd [31mred"
