"""Picture text a small model cannot get wrong: values read from OCR lines by rule.

RapidOCR reads an invoice as "Invoice 4471 / total83.20EUR"; asked for the
total, a 135M model answered "The picture is a mockup of an invoice". So an
amount, date, code or name the question asks for is found in the lines by
rule and stated with the line it came from, and "what is this?" gets the
classifier's labels as it gave them; only other questions reach the model
(assistant/flow/chains.py checks its reply against the lines with grounding.support).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.knowledge.grounding import content_words

_CURRENCY = r"(?:EUR|USD|GBP|CHF|JPY|PLN|SEK|€|\$|£|¥)"
_AMOUNT = re.compile(
    rf"({_CURRENCY})?\s*(\d{{1,3}}(?:[ ,.]\d{{3}})*[.,]\d{{2}}|\d+[.,]\d{{2}})"
    rf"\s*({_CURRENCY})?",
    re.I,
)
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE = re.compile(
    rf"(?<!\d)(\d{{4}}-\d{{1,2}}-\d{{1,2}}|"
    rf"\d{{1,2}}[./-]\d{{1,2}}[./-]\d{{2,4}}|\d{{1,2}}\s*{_MONTH}\s*\d{{4}}|"
    rf"{_MONTH}\s*\d{{1,2}},?\s*\d{{4}})(?!\d)",
    re.I,
)
_ASKS = {
    "amount": re.compile(
        r"\b(total|amount|price|cost|pay|paid|due|sum|how much|balance|"
        r"charge|fee|owe)",
        re.I,
    ),
    "date": re.compile(r"\b(date|when|day|dated|issued on|deadline)\b", re.I),
    "code": re.compile(
        r"\b(code|number|no\b|id\b|reference|ref\b|order|invoice|booking|"
        r"ticket|gate|seat|room|flight|account|serial|postcode|zip)",
        re.I,
    ),
    "name": re.compile(
        r"\b(who|name|company|vendor|seller|shop|store|issued by|from whom|"
        r"sender|merchant|business)\b",
        re.I,
    ),
}
# Line words that say which amount is the one owed, best first.
_TOTAL_WORDS = (
    "amount due",
    "total due",
    "grand total",
    "balance due",
    "to pay",
    "total",
    "amount",
    "due",
    "balance",
)
_GENERIC = {
    "invoice",
    "receipt",
    "bill",
    "total",
    "date",
    "thank",
    "thanks",
    "order",
    "ticket",
    "subtotal",
    "vat",
    "tax",
    "qty",
    "item",
    "items",
    "price",
}


@dataclass(frozen=True)
class Found:
    what: str  # "amount" | "date" | "code" | "name"
    value: str  # as stated to the person
    line: str  # the OCR line it was read from


def asked_for(question: str) -> str | None:
    """Which kind of value the question asks for, if any (amount before date before code)."""
    for kind in ("amount", "date", "name", "code"):
        if _ASKS[kind].search(question):
            if kind == "code" and _ASKS["amount"].search(question):
                continue
            return kind
    return None


def respace(line: str) -> str:
    """An OCR line with the spaces RapidOCR often drops put back where they are certain.

    "HarborHardware" → "Harbor Hardware", "Total6.75" → "Total 6.75",
    "54.90EUR" → "54.90 EUR", "Date:2026" → "Date: 2026"; codes such as
    "INV-2093", "B22" or "14C" are left alone.
    """
    line = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", line)
    line = re.sub(r"(?<=[a-z])(?=\d)", " ", line)
    line = re.sub(r"(?<=\d)(?=[A-Z]{3}\b)", " ", line)
    line = re.sub(r"(?<=\d)(?=[A-Z][a-z]{2})", " ", line)  # 12Dec → 12 Dec
    line = re.sub(r"(?<=[a-z])\.(?=[A-Z])", ". ", line)  # No.INV → No. INV
    return re.sub(r":(?=\S)", ": ", line)


def find_in_ocr(question: str, lines: Sequence[str]) -> Found | None:
    """The amount, date, code or name the question asks for, read from the OCR lines by rule."""
    kind = asked_for(question)
    if kind is None or not lines:
        return None
    lines = [respace(line) for line in lines]
    return {"amount": _amount, "date": _date, "code": _code, "name": _name}[kind](question, lines)


def _amount(question: str, lines: Sequence[str]) -> Found | None:
    found = [(line, m) for line in lines for m in _AMOUNT.finditer(line)]
    if not found:
        return None
    q = question.lower()

    def rank(item) -> tuple:
        line, m = item
        low = line.lower()
        asked = [w for w in _TOTAL_WORDS if w in q and w in low]
        hits = [i for i, w in enumerate(_TOTAL_WORDS) if w in low]
        # Asked-for word on the line first, then the best total word, then the later line.
        return (-len(asked), min(hits) if hits else 99, -lines.index(line))

    line, m = sorted(found, key=rank)[0]
    value = m[2].replace(" ", "")
    if "," in value and "." not in value:
        value = value.replace(",", ".")
    currency = (m[1] or m[3] or "").strip()
    if not currency:  # "total 83.20 EUR" read with the currency on the next token
        after = re.search(rf"{re.escape(m[2])}\s*({_CURRENCY})", line, re.I)
        currency = after[1] if after else ""
    if currency in ("$", "£", "€", "¥"):
        return Found("amount", f"{currency}{value}", line)
    return Found("amount", f"{value} {currency.upper()}".strip(), line)


def _date(question: str, lines: Sequence[str]) -> Found | None:
    found = [(line, m[1]) for line in lines for m in _DATE.finditer(line)]
    if not found:
        return None
    q = content_words(question)
    line, value = max(found, key=lambda f: (len(q & content_words(f[0])), -lines.index(f[0])))
    return Found("date", value, line)


def _code(question: str, lines: Sequence[str]) -> Found | None:
    """A code with digits ("INV-2093", "B22", "5561-220") on the line the question names.

    OCR often glues a label to its value ("InvoiceNo.INV-2093", "Account5561-220"),
    so the line is matched by substring and a glued lowercase label is cut off.
    """
    asked = content_words(question) - {"number", "code", "id", "pictur", "imag"}
    best = None
    for i, line in enumerate(lines):
        low = line.lower()
        named = sum(1 for w in asked if w in low)
        for m in re.finditer(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*", line):
            token = m[0]
            glued = re.match(r"[A-Za-z]*[a-z]", token)  # up to its last lowercase letter
            if glued and re.match(r"[A-Z]*\d", token[glued.end() :]):
                token = token[glued.end() :]
            if not re.search(r"\d", token) or _DATE.fullmatch(token):
                continue
            if re.fullmatch(r"\d+", token) and line[m.end() : m.end() + 1] in (".", ","):
                continue  # the whole part of an amount
            score = (named, bool(re.search(r"[A-Za-z]", token) or "-" in token), -i)
            if best is None or score > best[0]:
                best = (score, token, line)
    return Found("code", best[1], best[2]) if best else None


def _name(question: str, lines: Sequence[str]) -> Found | None:
    for line in lines:
        ws = re.findall(r"[^\W\d_]+", line)
        if len(ws) >= 2 and not re.search(r"\d", line) and not ({w.lower() for w in ws} & _GENERIC):
            return Found("name", line.strip(), line)
    return None


_SAY = {
    "amount": "The amount is",
    "date": "The date is",
    "code": "It reads",
    "name": "The name on it is",
}


def state(found: Found, question: str) -> str:
    """The extracted value in one sentence, with the OCR line it came from."""
    lead = _SAY[found.what]
    if found.what == "amount" and re.search(r"\btotal\b", question, re.I):
        lead = "The total is"
    return f"{lead} **{found.value}** (read from the line “{found.line}”)."


def picture_reply(
    question: str,
    labels: Sequence[tuple[str, float]],
    lines: Sequence[str],
    findings: str = "",
) -> str | None:
    """A reply made by rule when the question allows one; None: let the model phrase it.

    Asked for an amount, date, code or name that the lines hold: stated,
    then ``findings`` (all the readers saw) after it. Asked what the
    picture shows or says (or nothing at all): the classifier's labels as
    it gave them, and the lines (that listing is the findings already).
    """
    found = find_in_ocr(question, lines)
    if found:
        return "\n\n".join(p for p in (state(found, question), findings) if p)
    q = question.lower().strip()
    says = re.search(r"\b(say|says|read|text|written|writing|words)\b", q)
    shows = not q or re.search(
        r"\b(what is (this|it|in)|what's (this|in)|describe|what does "
        r"(it|this|the (picture|image|photo)) show|what do you see)",
        q,
    )
    if says or shows:
        return picture_facts(labels, lines, text_first=bool(says))
    return None


def picture_facts(
    labels: Sequence[tuple[str, float]], lines: Sequence[str], text_first: bool = False
) -> str:
    if labels:
        guess = f"The image classifier's best guess is **{labels[0][0]}** ({labels[0][1]:.0%})"
        others = ", ".join(f"{label} ({p:.0%})" for label, p in labels[1:3])
        guess += f"; next: {others}." if others else "."
    else:
        guess = ""
    if lines:
        text = "The text in it reads:\n" + "\n".join(f"- {line}" for line in lines[:12])
    else:
        text = "No readable text was found in it."
    return "\n\n".join(p for p in ((text, guess) if text_first else (guess, text)) if p)


PICTURE_SYSTEM = (
    "You answer questions about a picture you cannot see. Two small models read it for you: "
    "an image classifier's guesses and the lines of text found in it. Use only those, in one "
    "or two short sentences."
)


def picture_prompt(question: str, labels: Sequence[tuple[str, float]], lines: Sequence[str]) -> str:
    """The user turn for a picture question: labels and OCR lines as short plain lists."""
    seen = ", ".join(f"{label} ({p:.0%})" for label, p in labels[:3]) or "nothing"
    text = "\n".join(f"- {line}" for line in lines[:12]) or "- (no text found)"
    return (
        f"The classifier says it looks like: {seen}.\nText found in the picture:\n{text}\n\n"
        f"{question.strip()}"
    )
