"""The Compare tab: one prompt to 2–4 models at once, a blind vote, a leaderboard.

The columns stream side by side from assistant/evaluation/compare.py; the
names stay hidden in blind mode until the person votes (A, B, tie, both
bad), and the vote moves the leaderboard at once. Nothing here knows a
model: it only turns the comparison's events into Markdown.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from assistant.evaluation.compare import MAX_MODELS, Column, Piece, check_models, stream
from assistant.evaluation.votes import Votes, leaderboard
from assistant.flow.service import Assistant
from assistant.web.access import check_files
from assistant.web.ui.documents import user_of
from assistant.web.ui.render import safe_markdown
from models.base import AssistantError, BadInput

LABELS = "ABCD"
BOARD_COLUMNS = [
    "task",
    "#",
    "model",
    "rating",
    "95% interval",
    "votes",
    "median run s",
    "median $ here",
]
FEW = 5  # votes a model needs before its interval means anything
VOTES = {"A is better": "a", "B is better": "b", "Tie": "tie", "Both bad": "both_bad"}


def votes_of(assistant: Assistant) -> Votes:
    return Votes(assistant.database_for(assistant.settings.home / "votes.sqlite"))


def board_rows(assistant: Assistant) -> list[list]:
    rows = []
    for r in leaderboard(votes_of(assistant), assistant.ledger):
        run = f"{r['run_s_p50']:.2f}" if "run_s_p50" in r else "–"
        usd = f"${r['usd_local_p50']:.5f}" if "usd_local_p50" in r else "–"
        # A bootstrap of one or two votes resamples the same votes: its interval
        # looks certain and is not. Say so instead of printing it.
        interval = f"{r['low']}–{r['high']}" if r["votes"] >= FEW else f"needs {FEW}+ votes"
        rows.append([r["task"], r["rank"], r["model"], r["rating"], interval, r["votes"], run, usd])
    return rows


def cell(n: int, model: str, blind: bool, streamed: str, column: Column | None) -> str:
    """One column as Markdown: its label, what it said so far, and its figures when done."""
    name = f"Model {LABELS[n]}" if blind else f"{LABELS[n]} · {model}"
    body = (column.output or streamed) if column else streamed
    if not body and column is None:
        body = "*loading the model, waiting for its first words…*"
    figures = f"\n\n<sub>{stats(column)}</sub>" if column else ""
    # Answers may repeat what documents hold: rendered as safely as chat replies.
    return f"**{name}**\n\n{safe_markdown(body)}{figures}"


def stats(column: Column) -> str:
    """One line under a finished column: speed, time and money, here vs the cloud."""
    if column.status != "ok":
        return f"⚠️ {column.error}"
    parts = []
    if column.first_s is not None:
        parts.append(f"first words {column.first_s:.1f} s")
    parts.append(f"total {column.total_s:.1f} s")
    if column.timings.get("load_s", 0) > 0.05:
        parts.append(f"(cold load {column.timings['load_s']:.1f} s)")
    if column.speed:
        parts.append(column.speed)
    cost = column.cost or {}
    if cost:
        cloud = cost.get("usd_cloud")
        here = _usd(cost.get("usd_local") or 0.0)
        parts.append(f"{here} here vs {_usd(cloud)} cloud" if cloud is not None else here)
    return " · ".join(parts)


def _usd(value: float | None) -> str:
    if value is None:
        return "–"
    if value == 0:
        return "$0"
    return "< $0.00001" if value < 0.00001 else f"${value:.5f}"


def models_here(assistant: Assistant) -> list[str]:
    """Built catalog ids, read anew: a model tuned a minute ago is one of them."""
    return [e.id for e in assistant.catalog.entries.values() if e.built]


def build_compare_tab(assistant: Assistant, tab: gr.Tab) -> None:
    prompt, attach, models, blind, go = _controls(assistant)
    shown = gr.State([])  # the models in the order their columns show, for the vote
    task = gr.State("")
    with gr.Row():
        columns = [
            gr.Markdown(visible=n < 2, elem_id=f"compare-col-{n}", elem_classes="compare-column")
            for n in range(MAX_MODELS)
        ]
    with gr.Row(visible=False, elem_id="compare-votes") as vote_row:
        buttons = [
            gr.Button(label, size="sm", elem_id=f"vote-{code}") for label, code in VOTES.items()
        ]
    said = gr.Markdown(elem_id="compare-said")
    gr.Markdown(
        "**Leaderboard** — Bradley–Terry ratings from your votes, with a 95% "
        "interval (wide until there are many votes), beside what each model "
        "measured on this machine"
    )
    board = gr.Dataframe(
        headers=BOARD_COLUMNS, value=board_rows(assistant), interactive=False, elem_id="leaderboard"
    )
    tab.select(lambda: gr.Dropdown(choices=models_here(assistant)), None, models, api_name=False)
    outputs = [*columns, vote_row, said, shown, task]
    run = _runner(assistant)
    go.click(run, [prompt, attach, models, blind], outputs, api_name=False)
    prompt.submit(run, [prompt, attach, models, blind], outputs, api_name=False)
    for button, code in zip(buttons, VOTES.values(), strict=True):
        button.click(
            _voter(assistant, code), [shown, task, prompt], [vote_row, said, board], api_name=False
        )


def _controls(assistant: Assistant) -> tuple:
    """(prompt, attachment, models, blind, go): what the person fills in."""
    with gr.Row():
        prompt = gr.Textbox(
            label="Prompt",
            lines=2,
            scale=4,
            elem_id="compare-prompt",
            placeholder="One prompt for every model, e.g. 'Explain DNS in two sentences.'",
        )
        attach = gr.File(label="Attachment (optional)", scale=1, height=110, elem_id="compare-file")
    with gr.Row():
        models = gr.Dropdown(
            models_here(assistant),
            multiselect=True,
            max_choices=MAX_MODELS,
            label="Models (2 to 4, of the same task)",
            scale=4,
            value=_two_defaults(assistant),
            elem_id="compare-models",
        )
        blind = gr.Checkbox(
            True, label="Blind: hide the names until I vote", scale=1, elem_id="compare-blind"
        )
        go = gr.Button("Compare", variant="primary", scale=1, elem_id="compare-go")
    return prompt, attach, models, blind, go


def _runner(assistant: Assistant):
    """The Compare button's generator: the columns as they stream, then the vote."""

    def run(text, file, chosen, is_blind, request: gr.Request):
        chosen = list(chosen or [])
        hidden = [gr.Markdown(visible=False)] * (MAX_MODELS - len(chosen))
        attachments = [Path(file if isinstance(file, str) else file.name)] if file else []
        try:
            if not (text or "").strip() and not attachments:
                raise BadInput("Type a prompt (or attach a file) to compare the models on.")
            check_files(assistant.settings, request, attachments)  # this browser's uploads only
            task_name = check_models(assistant, chosen, text or "", attachments)
        except AssistantError as err:
            gr.Warning(str(err))
            yield [gr.skip()] * (MAX_MODELS + 4)
            return
        texts = [""] * len(chosen)
        done: dict[int, Column] = {}

        def view():
            cells = [
                gr.Markdown(cell(n, m, is_blind, texts[n], done.get(n)), visible=True)
                for n, m in enumerate(chosen)
            ]
            return cells + hidden

        yield (*view(), gr.Row(visible=False), "", chosen, task_name)
        user = user_of(request)
        for event in stream(assistant, text or "", chosen, attachments, user, "ui-compare"):
            if isinstance(event, Piece):
                texts[event.column] += event.text
            else:
                done[event.column] = event
            yield (*view(), gr.skip(), gr.skip(), gr.skip(), gr.skip())
        ask_vote = len(chosen) == 2
        note = (
            "Which answer is better? Your vote ranks the models below."
            if ask_vote
            else "Votes rank two models at a time: compare two to vote."
        )
        yield (*view(), gr.Row(visible=ask_vote), note, chosen, task_name)

    return run


def _voter(assistant: Assistant, code: str):
    def vote(order, task_name, text, request: gr.Request):
        if len(order) != 2:
            return gr.skip(), gr.skip(), gr.skip()
        votes_of(assistant).record(
            task_name, order[0], order[1], code, user_of(request), text or ""
        )
        reveal = f"Recorded. **A** was `{order[0]}`, **B** was `{order[1]}`."
        return gr.Row(visible=False), reveal, board_rows(assistant)

    return vote


def _two_defaults(assistant: Assistant) -> list[str]:
    """Two text models that can load here, so the first click compares something real."""
    weights = assistant.settings.weights_dir
    ready = [
        e.id
        for e in assistant.catalog.for_task("text")
        if e.built and e.availability(weights)[0] and not e.endpoint
    ]
    return ready[:2]
