"""Model cards in the UI: every catalog model, what it is, and what it measured here.

The rows come from assistant/evaluation/cards.py (the same cards as
`python -m assistant models --json`), read anew each time the tab opens,
so a vote, an eval or a request just made shows at once.
"""

from __future__ import annotations

import gradio as gr

from assistant.evaluation.cards import cards, quality_line, speed_line
from assistant.flow.service import Assistant

CARD_COLUMNS = [
    "model",
    "what it is",
    "open · license",
    "size",
    "languages · tasks",
    "measured quality",
    "speed and cost here (median per request)",
    "can run now",
]


def card_rows(assistant: Assistant) -> list[list]:
    rows = []
    for c in cards(assistant.catalog, assistant.settings, assistant.ledger):
        size = f"{c['params_m']:g}M params · {c['size_mb']} MB"
        if c["context_window"]:
            size += f" · {c['context_window']:,} tokens context"
        rows.append(
            [
                f"{c['id']}\n({c['name']})",
                c["what"],
                f"{'open' if c['open'] else 'proprietary'} · {c['license']}",
                size,
                f"{c['languages']} · {', '.join(c['tasks'])}",
                quality_line(c),
                speed_line(c),
                ("yes, " if c["available"] else "no: ") + c["availability"],
            ]
        )
    return rows


def build_model_cards(assistant: Assistant, tab: gr.Tab) -> None:
    with gr.Accordion("Model cards: what each model is, and what it measured here", open=False):
        gr.Markdown(
            "Quality is what was measured: `bench answers` (grounded answers), your "
            "blind votes (leaderboard) and your finished evals. Speed and cost are the "
            "ledger's medians on this machine."
        )
        table = gr.Dataframe(
            headers=CARD_COLUMNS,
            value=lambda: card_rows(assistant),
            interactive=False,
            wrap=True,
            elem_id="model-cards",
        )
    tab.select(lambda: card_rows(assistant), None, table, api_name=False)
