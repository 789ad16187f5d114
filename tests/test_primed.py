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


def test_a_system_prompt_or_a_model_picked_by_name_is_left_as_it_is(assistant, fake_chat):
    system = (Message("system", "Answer in French."),)
    for request in (
        Request(text="Capital of Peru?", history=system),
        Request(text="Capital of Peru?", model="smollm2-135m-instruct"),
    ):
        assistant.ask(request)
        assert fake_chat.seen[-1].history == request.history, request


def test_a_follow_up_on_the_stronger_model_is_told_to_use_the_earlier_turns(settings, fake_chat):
    from assistant.flow.primed import FOLLOW_UP_SYSTEM
    from tests.conftest import make_assistant

    assistant = make_assistant(
        settings.with_(grounded_model=("smollm2-135m-instruct-fp32",)), fake_chat
    )
    turns = (
        Message("system", "Answer in French."),
        Message("user", "What is the capital of France?"),
        Message("assistant", "Paris."),
    )
    outcome = assistant.ask(Request(text="What is its population?", history=turns))
    assert outcome.route.model == "smollm2-135m-instruct-fp32"
    seen = fake_chat.seen[-1]
    # The instruction first, the chat's own system prompt after it, then the turns.
    assert seen.history[0].content == FOLLOW_UP_SYSTEM + "\n\nAnswer in French."
    assert seen.history[1:] == turns[1:]


def test_a_follow_up_on_the_chat_model_itself_is_left_as_it_is(settings, fake_chat):
    from tests.conftest import make_assistant

    assistant = make_assistant(settings.with_(grounded_model=()), fake_chat)
    turns = (Message("user", "Hi"), Message("assistant", "Hello!"))
    outcome = assistant.ask(Request(text="And you?", history=turns))
    assert outcome.route.model == "smollm2-135m-instruct"
    assert fake_chat.seen[-1].history == turns
