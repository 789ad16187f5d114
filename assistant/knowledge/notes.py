"""A spoken note to keep ("remind me to…", "note that…", "add … to my list"), restated by rule.

Voice memos are often notes, not questions. The text models garble them:
Qwen2.5-Coder-0.5B restated "Add coffee, apples and rice to my shopping
list" as "Remember to include the items you plan to buy." and answered
"Remind me that the meeting with Laura moved to Friday" with "I'm sorry,
but I can't assist with that request."; with documents present, "Remind me
to water the tomato plants" was searched in them and answered with a
passage about whitefly (bench answers, 2026-12-03). A note's reply is what
to keep, in the person's own words turned to "you": every item, nothing
invented. The app keeps it in the chat; it sends no reminders, and the
reply's note says so.
"""

from __future__ import annotations

import re

_LEAD = r"^\s*(?:(?:ok(?:ay)?|hey|so|please)[,\s]+)*"
# (pattern, how the reply begins); the first that matches the transcript wins.
NOTES = (
    (re.compile(_LEAD + r"remind me (?:to|that|about)\s+(?P<what>.+)", re.I), "To remember"),
    (
        re.compile(
            _LEAD + r"(?:remember|don'?t forget|do not forget)\s+(?:to|that)\s+(?P<what>.+)",
            re.I,
        ),
        "To remember",
    ),
    (
        re.compile(_LEAD + r"(?:make a )?note(?: down)?(?: that)?[:,]?\s+(?P<what>.+)", re.I),
        "To remember",
    ),
    (
        re.compile(
            _LEAD + r"(?:add|put)\s+(?P<what>.+?)\s+(?:to|on|onto|in)\s+(?:my|the)\s+"
            r"(?P<list>[\w\s-]{0,30}?list)\W*$",
            re.I,
        ),
        "For your {list}",
    ),
)
# First person to second: the reply speaks to the person who spoke.
_YOU = {
    "i": "you",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
    "i'm": "you're",
    "i've": "you've",
    "i'll": "you'll",
    "i'd": "you'd",
    "am": "are",
}
NOTE = "Restated from what was said, by rule; no text model ran. The app sends no reminders."


# The words of _YOU, longest first ("i'm" before "i").
_FIRST_PERSON = re.compile(r"\b(?:" + "|".join(sorted(_YOU, key=len, reverse=True)) + r")\b", re.I)


def _to_you(text: str) -> str:
    return _FIRST_PERSON.sub(lambda m: _YOU[m.group(0).lower()], text)


def note_reply(said: str) -> str | None:
    """The reply to a spoken note, or None when ``said`` is not one (a question, a request)."""
    text = " ".join(said.split())
    for pattern, head in NOTES:
        found = pattern.match(text)
        if not found:
            continue
        what = _to_you(found.group("what")).strip(" .,;:!")
        if not re.search(r"\w", what):
            return None  # "Remind me to." holds nothing to keep
        lists = found.groupdict().get("list")
        return f"{head.format(list=_to_you(lists).lower()) if lists else head}: {what}."
    return None


def is_note(text: str) -> bool:
    """A note to keep: never a question for the person's documents."""
    return note_reply(text) is not None
