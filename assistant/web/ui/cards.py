"""Model cards in the UI: every catalog model, what it is, and what it measured here.

The cards come from assistant/evaluation/cards.py (the same cards as
`python -m assistant models --json`), read anew each time the tab opens,
so a vote, an eval or a request just made shows at once. Each is a short
block of text, not a table row: eight columns of prose do not fit a page.
"""

from __future__ import annotations

import gradio as gr

from assistant.evaluation.cards import cards, quality_line, speed_line
from assistant.flow.service import Assistant
from assistant.web.ui.compare import votes_of


def card_markdown(card: dict) -> str:
    size = f"{card['params_m']:g}M parameters, {card['size_mb']} MB"
    if card["context_window"]:
        size += f", {card['context_window']:,}-token context"
    openness = "open" if card["open"] else "proprietary"
    runs = "can run now" if card["available"] else f"cannot run now: {card['availability']}"
    return (
        f"**{card['id']}** — {card['name']}  \n"
        f"{card['what']} · {', '.join(card['tasks'])} · {card['languages']}  \n"
        f"{openness} ({card['license']}) · {size} · {runs}  \n"
        f"Measured quality: {quality_line(card)}  \n"
        f"Here (ledger medians per request): {speed_line(card)}"
    )


def cards_markdown(assistant: Assistant) -> str:
    found = cards(assistant.catalog, assistant.settings, assistant.ledger, votes_of(assistant))
    return "\n\n---\n\n".join(card_markdown(c) for c in found)


def build_model_cards(assistant: Assistant, tab: gr.Tab) -> None:
    title = "Model cards: what each model is, and what it measured here"
    with gr.Accordion(title, open=False) as panel:
        gr.Markdown(
            "Quality is what was measured: `bench answers` (grounded answers), your "
            "blind votes (leaderboard) and your finished evals. Speed and cost are the "
            "ledger's medians on this machine."
        )
        # Filled when the tab or the panel opens, not by a callable value: that
        # would be a page-load event, listed in the app's API beside the tools.
        shown = gr.Markdown("", elem_id="model-cards")
    # Read anew when the tab or the panel opens: an eval just run is on its models' cards.
    tab.select(lambda: cards_markdown(assistant), None, shown, api_name=False)
    panel.expand(lambda: cards_markdown(assistant), None, shown, api_name=False)
