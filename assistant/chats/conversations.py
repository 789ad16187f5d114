"""Conversations that survive a restart, and prompt templates with few-shot examples.

Chats live in ASSISTANT_HOME/chats.sqlite, or in the PostgreSQL database
every replica shares (ASSISTANT_DATABASE_URL, assistant/database.py): one
row per chat (its title and system prompt) and one per message. A user's
message is written before the model runs, so a crash or a stopped reply
never loses what was typed; the reply is written when it ends, stopped or
not.

Templates (built-ins in templates.json, the user's own in
ASSISTANT_HOME/templates.json) wrap the message in a prompt with named
variables and zero, one or several worked examples placed before the
conversation as earlier turns: the way few-shot prompting works on a chat
model.
"""

from __future__ import annotations

import json
import re
import string
import time
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path

from assistant.database import Database, Migration, SQLiteDatabase
from models.base import BadInput, Message

BUILTIN_TEMPLATES = Path(__file__).with_name("templates.json")
# Numbered like the ledger's, recorded in chats_schema_version. 1 is the schema
# chats.sqlite had before it was numbered: IF NOT EXISTS adopts such a file.
VERSION_TABLE = "chats_schema_version"
MIGRATIONS = [
    Migration("""
CREATE TABLE IF NOT EXISTS chats (
    id TEXT PRIMARY KEY, "user" TEXT NOT NULL, title TEXT NOT NULL,
    system_prompt TEXT NOT NULL DEFAULT '', created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, chat_id TEXT NOT NULL REFERENCES chats(id)
    ON DELETE CASCADE, role TEXT NOT NULL, content TEXT NOT NULL, meta TEXT,
    created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS messages_chat ON messages (chat_id, seq);
CREATE INDEX IF NOT EXISTS chats_user ON chats ("user", updated);
"""),
]


@dataclass(frozen=True)
class ChatInfo:
    id: str
    title: str
    system_prompt: str
    updated: float


@dataclass(frozen=True)
class Turn:
    role: str  # "user" | "assistant"
    content: str
    meta: dict  # route, template, stopped...


class Chats:
    """The chat store. Every method checks the chat belongs to ``user``.

    ``where`` is a Database or an SQLite file's path. Replicas sharing one
    database see the same chats, each still only its owner's.
    """

    def __init__(self, where: Path | Database, upgrade: bool | None = None):
        self.db = where if isinstance(where, Database) else SQLiteDatabase(where)
        self.db.migrate(MIGRATIONS, VERSION_TABLE, upgrade)

    def create(self, user: str, title: str = "New chat", system_prompt: str = "") -> str:
        chat_id = uuid.uuid4().hex[:12]
        now = time.time()
        self.db.execute(
            'INSERT INTO chats (id, "user", title, system_prompt, created, updated)'
            " VALUES (?,?,?,?,?,?)",
            (chat_id, user, title, system_prompt, now, now),
        )
        return chat_id

    def list(self, user: str) -> list[ChatInfo]:
        rows = self.db.all(
            'SELECT id, title, system_prompt, updated FROM chats WHERE "user"=? '
            "ORDER BY updated DESC",
            (user,),
        )
        return [ChatInfo(*row) for row in rows]

    def info(self, user: str, chat_id: str) -> ChatInfo:
        row = self.db.one(
            'SELECT id, title, system_prompt, updated FROM chats WHERE id=? AND "user"=?',
            (chat_id, user),
        )
        if row is None:
            raise BadInput(f"There is no chat '{chat_id}' (it may have been deleted).")
        return ChatInfo(*row)

    def turns(self, user: str, chat_id: str) -> list[Turn]:
        self.info(user, chat_id)
        rows = self.db.all(
            "SELECT role, content, meta FROM messages WHERE chat_id=? ORDER BY seq", (chat_id,)
        )
        return [Turn(r, c, json.loads(m) if m else {}) for r, c, m in rows]

    def add(self, user: str, chat_id: str, role: str, content: str, meta: dict | None = None):
        info = self.info(user, chat_id)
        content = clean_text(content)
        now = time.time()
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO messages (chat_id, role, content, meta, created) VALUES (?,?,?,?,?)",
                (chat_id, role, content, json.dumps(meta) if meta else None, now),
            )
            title = info.title
            if title == "New chat" and content.strip():
                # The first question names the chat; a message of attachments alone
                # (a voice memo, a picture) is named by its reply's first line: what
                # was heard or seen.
                title = _title(content)
            self.db.execute("UPDATE chats SET updated=?, title=? WHERE id=?", (now, title, chat_id))

    def rename(self, user: str, chat_id: str, title: str) -> None:
        self.info(user, chat_id)
        title = " ".join(clean_text(title).split())[:120]
        if not title:
            raise BadInput("A chat's name cannot be empty.")
        self.db.execute("UPDATE chats SET title=? WHERE id=?", (title, chat_id))

    def set_system_prompt(self, user: str, chat_id: str, prompt: str) -> None:
        self.info(user, chat_id)
        prompt = clean_text(prompt).strip()
        self.db.execute("UPDATE chats SET system_prompt=? WHERE id=?", (prompt, chat_id))

    def delete(self, user: str, chat_id: str) -> None:
        self.info(user, chat_id)
        self.db.execute("DELETE FROM chats WHERE id=?", (chat_id,))

    def history(self, user: str, chat_id: str) -> tuple[Message, ...]:
        """What the model sees of this chat: its system prompt, then the turns."""
        info = self.info(user, chat_id)
        system = (Message("system", info.system_prompt),) if info.system_prompt else ()
        # Failed replies stay in the chat for the person, not in the model's context.
        turns: list[Turn] = []
        for turn in self.turns(user, chat_id):
            if turn.meta.get("status", "ok") != "ok":
                continue
            if turn.role == "assistant" and turns and turns[-1].role == "assistant":
                turns[-1] = turn  # a re-run's answer: the model reads the newest one
            else:
                turns.append(turn)
        return system + tuple(Message(t.role, t.content) for t in turns if t.content.strip())

    def export(self, user: str, chat_id: str, fmt: str) -> str:
        info, turns = self.info(user, chat_id), self.turns(user, chat_id)
        if fmt == "json":
            return json.dumps(
                {
                    "id": info.id,
                    "title": info.title,
                    "system_prompt": info.system_prompt,
                    "messages": [{"role": t.role, "content": t.content, **t.meta} for t in turns],
                },
                indent=2,
                ensure_ascii=False,
            )
        if fmt != "md":
            raise BadInput(f"Export as 'md' or 'json', not '{fmt}'.")
        lines = [f"# {info.title}", ""]
        if info.system_prompt:
            lines += [f"> System prompt: {info.system_prompt}", ""]
        for t in turns:
            lines += [f"**{'You' if t.role == 'user' else 'Assistant'}:**", "", t.content, ""]
        return "\n".join(lines)


# -- prompt templates ----------------------------------------------------------


@dataclass(frozen=True)
class Template:
    id: str
    name: str
    prompt: str  # str.format fields; {text} is the message, others come from variables
    system: str = ""  # added to the chat's system prompt
    examples: tuple[tuple[str, str], ...] = ()  # (user, assistant) worked examples

    @property
    def shots(self) -> str:
        return (
            ("zero-shot", "one-shot")[len(self.examples)]
            if len(self.examples) < 2
            else (f"few-shot ({len(self.examples)})")
        )

    def fields(self) -> list[str]:
        return [f for _, f, _, _ in string.Formatter().parse(self.prompt) if f]


def load_templates(home: Path) -> dict[str, Template]:
    """Built-in templates, then the user's own (same id replaces a built-in)."""
    templates = {}
    for path in (BUILTIN_TEMPLATES, home / "templates.json"):
        if not path.is_file():
            continue
        try:
            items = json.loads(path.read_text())
            for t in items:
                templates[t["id"]] = Template(
                    t["id"],
                    t["name"],
                    t["prompt"],
                    t.get("system", ""),
                    tuple((u, a) for u, a in t.get("examples", ())),
                )
        except (ValueError, KeyError, TypeError) as err:
            raise BadInput(f"{path} is not a valid templates file ({err}).") from err
    return templates


def parse_variables(text: str) -> dict[str, str]:
    """'name=value' per line, as typed in the UI."""
    out = {}
    for line in (text or "").splitlines():
        if line.strip():
            name, sep, value = line.partition("=")
            if not sep or not name.strip():
                raise BadInput(f"Write template variables as name=value, one per line: '{line}'.")
            out[name.strip()] = value.strip()
    return out


def apply_template(
    template: Template, text: str, variables: dict[str, str], history: tuple[Message, ...]
) -> tuple[str, tuple[Message, ...]]:
    """The message and history the model sees with ``template`` applied."""
    missing = [f for f in template.fields() if f != "text" and f not in variables]
    if missing:
        raise BadInput(
            f"The template '{template.name}' needs a value for {', '.join(missing)}: add "
            f"{' and '.join(f'a line {m}=...' for m in missing)} under Template variables."
        )
    try:
        prompt = template.prompt.format(**{**variables, "text": text})
    except (ValueError, IndexError, KeyError) as err:
        raise BadInput(f"The template '{template.name}' is malformed: {err}.") from err
    system = [m for m in history if m.role == "system"]
    if template.system:
        joined = "\n\n".join([*(m.content for m in system), template.system])
        system = [Message("system", joined)]
    shots = []
    for user, assistant in template.examples:
        shots += [
            Message("user", template.prompt.format(**{**variables, "text": user})),
            Message("assistant", assistant),
        ]
    rest = [m for m in history if m.role != "system"]
    return prompt, tuple(system + shots + rest)


def clean_text(text: str) -> str:
    """Text safe for tokenizers, SQLite and terminals.

    Control characters (NUL, escape sequences) are dropped: newlines and
    tabs are the only ones a message needs. Lone surrogates, which is how
    invalid UTF-8 reaches Python (surrogateescape, or a JSON "\\udce9"),
    become U+FFFD: the tokenizer raises a TypeError on them and SQLite
    refuses to store them.
    """
    return "".join(
        "\ufffd" if unicodedata.category(ch) == "Cs" else ch
        for ch in text
        if ch in "\n\t" or unicodedata.category(ch) != "Cc"
    )


def _title(content: str, most: int = 60) -> str:
    """A chat's name from its first line: no transcript times, cut between words."""
    line = " ".join(content.strip().splitlines()[0].split())
    line = re.sub(r"^\[[\d:.]+[–-][\d:.]+\]\s*", "", line) or line  # "[00:00–00:02] Remind…"
    if len(line) <= most:
        return line
    cut = line[: most - 1].rsplit(" ", 1)[0]  # no space: the whole cut
    return cut.rstrip(" ,;:") + "…"
