"""A lone plain question to the default chat model is shown short example answers first."""

from __future__ import annotations

from assistant.flow.primed import EXAMPLES
from models.base import Message, Request


def test_a_lone_question_to_the_chat_model_is_primed_with_the_examples(assistant, fake_chat):
    outcome = assistant.ask(Request(text="What is the capital of Peru?"))
    assert outcome.status == "ok", outcome.error
    seen = fake_chat.seen[-1]
    assert seen.history == EXAMPLES and seen.text == "What is the capital of Peru?"
    # The examples are what the model reads, not what the person sees.
    assert outcome.result.text == "Paris is the capital of France."


def test_a_conversation_a_system_prompt_or_a_model_picked_by_name_is_left_as_it_is(
    assistant, fake_chat
):
    turns = (Message("user", "Hi"), Message("assistant", "Hello!"))
    system = (Message("system", "Answer in French."),)
    for request in (
        Request(text="And you?", history=turns),
        Request(text="Capital of Peru?", history=system),
        Request(text="Capital of Peru?", model="smollm2-135m-instruct"),
    ):
        assistant.ask(request)
        assert fake_chat.seen[-1].history == request.history, request
