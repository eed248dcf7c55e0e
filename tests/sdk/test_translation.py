"""The official SDKs on backends of another protocol (translation): the `anthropic` SDK on an
OpenAI-protocol backend, the `openai` SDK on an Anthropic and on a Gemini backend — plain,
streaming, and a tool-call round trip (call → tool result → final answer) each — and the
`openai` SDK's Responses API on a chat-completions-only backend, streaming with a function call.

The mock upstream calls a tool when `x-mock: tool=<name>` asks (arguments: an instance of the
tool's schema) and answers `Tool result received: <result>` once the last message is a tool
result, so each round trip proves the call and the result crossed the translation both ways."""

import json
import pathlib

import anthropic
import openai
import pytest
from conftest import BIN_DIR, CLIENT_KEY, UPSTREAM_KEY, Proc, _listening, clean_env

MOCK_TEXT = "Hello from portcullis-mock."
CALL_TOOL = {"x-mock": "tool=get_weather"}

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name"}},
    "required": ["city"],
}
OPENAI_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather of a city", "parameters": WEATHER_SCHEMA},
}
ANTHROPIC_TOOL = {"name": "get_weather", "description": "Weather of a city", "input_schema": WEATHER_SCHEMA}
RESPONSES_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather of a city",
    "parameters": WEATHER_SCHEMA,
}


@pytest.fixture(scope="module")
def crossed_url(mock_url, tmp_path_factory):
    """`portcullis serve` with one backend per protocol on the mock, plus `chat`: an OpenAI
    backend without the Responses API."""
    def backend(kind, base, **extra):
        b = {"type": kind, "base_url": base, "api_key": UPSTREAM_KEY, "forward_headers": ["x-mock"]}
        b.update(extra)
        return b

    config = {
        "auth": {"api_keys": [{"name": "sdk", "key": CLIENT_KEY}]},
        "backends": {
            "openai": backend("openai", mock_url + "/v1"),
            "chat": backend("openai", mock_url + "/v1", responses_api="chat_completions"),
            "anthropic": backend("anthropic", mock_url),
            "gemini": backend("gemini", mock_url),
        },
        "routing": {"default_backend": "openai"},
    }
    path = pathlib.Path(tmp_path_factory.mktemp("crossed")) / "portcullis.yaml"
    path.write_text(json.dumps(config))
    p = Proc(
        [str(BIN_DIR / "portcullis"), "serve", "--config", str(path), "--port", "0", "--log-format", "json"],
        clean_env(),
        "stderr",
    )
    yield p.wait_for(_listening)
    p.stop()


def oai(url):
    return openai.OpenAI(base_url=url + "/v1", api_key=CLIENT_KEY, max_retries=0)


def ant(url):
    return anthropic.Anthropic(base_url=url, api_key=CLIENT_KEY, max_retries=0)


# --- the anthropic SDK on an OpenAI-protocol backend --------------------------------------------


def test_anthropic_sdk_on_an_openai_backend(crossed_url):
    client = ant(crossed_url)
    m = client.messages.create(
        model="openai:mock-gpt", max_tokens=100, messages=[{"role": "user", "content": "Hello"}]
    )
    assert m.type == "message" and m.role == "assistant"
    assert m.content[0].text == MOCK_TEXT
    assert m.stop_reason == "end_turn"
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0

    with client.messages.stream(
        model="openai:mock-gpt", max_tokens=100, messages=[{"role": "user", "content": "Hello"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == MOCK_TEXT
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize("streamed", [False, True])
def test_anthropic_sdk_tool_round_trip_on_an_openai_backend(crossed_url, streamed):
    client = ant(crossed_url)
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    kwargs = dict(model="openai:mock-gpt", max_tokens=200, tools=[ANTHROPIC_TOOL], extra_headers=CALL_TOOL)
    if streamed:
        with client.messages.stream(messages=messages, **kwargs) as s:
            first = s.get_final_message()
    else:
        first = client.messages.create(messages=messages, **kwargs)
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and isinstance(call.input.get("city"), str)
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 C"}]},
    ]
    final = client.messages.create(messages=messages, **kwargs)
    assert final.stop_reason == "end_turn"
    assert final.content[0].text == "Tool result received: Sunny, 21 C"


# --- the openai SDK on an Anthropic and on a Gemini backend -------------------------------------


@pytest.mark.parametrize("model", ["anthropic:mock-claude", "gemini:mock-gemini"])
def test_openai_sdk_on_another_protocols_backend(crossed_url, model):
    client = oai(crossed_url)
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello"}])
    assert r.choices[0].message.content == MOCK_TEXT
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0

    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Hello"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = "", None, None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert text == MOCK_TEXT
    assert finish == "stop"
    assert usage is not None and usage.total_tokens > 0


@pytest.mark.parametrize("model", ["anthropic:mock-claude", "gemini:mock-gemini"])
@pytest.mark.parametrize("streamed", [False, True])
def test_openai_sdk_tool_round_trip_on_another_protocols_backend(crossed_url, model, streamed):
    client = oai(crossed_url)
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    kwargs = dict(model=model, tools=[OPENAI_TOOL], extra_headers=CALL_TOOL)
    if streamed:
        calls, finish = {}, None
        for chunk in client.chat.completions.create(messages=messages, stream=True, **kwargs):
            if not chunk.choices:
                continue
            for tc in chunk.choices[0].delta.tool_calls or []:
                c = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
                c["id"] = tc.id or c["id"]
                c["name"] += (tc.function and tc.function.name) or ""
                c["arguments"] += (tc.function and tc.function.arguments) or ""
            finish = chunk.choices[0].finish_reason or finish
        assert finish == "tool_calls"
        assert list(calls) == [0]
        call = calls[0]
    else:
        r = client.chat.completions.create(messages=messages, **kwargs)
        assert r.choices[0].finish_reason == "tool_calls"
        tc = r.choices[0].message.tool_calls[0]
        call = {"id": tc.id, "name": tc.function.name, "arguments": tc.function.arguments}
    assert call["name"] == "get_weather" and call["id"]
    assert isinstance(json.loads(call["arguments"])["city"], str)
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}
            ],
        },
        {"role": "tool", "tool_call_id": call["id"], "content": "Sunny, 21 C"},
    ]
    final = client.chat.completions.create(messages=messages, **kwargs)
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.content == "Tool result received: Sunny, 21 C"


# --- the openai SDK's Responses API on a chat-completions-only backend --------------------------


def test_openai_responses_on_a_chat_completions_backend(crossed_url):
    client = oai(crossed_url)
    r = client.responses.create(model="chat:mock-gpt", input="Hello")
    assert r.output_text == MOCK_TEXT
    assert r.status == "completed"
    assert r.usage.input_tokens > 0

    events = list(client.responses.create(model="chat:mock-gpt", input="Hello", stream=True))
    assert events[0].type == "response.created"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == MOCK_TEXT
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == MOCK_TEXT


def test_openai_responses_stream_with_a_function_call_on_a_chat_completions_backend(crossed_url):
    client = oai(crossed_url)
    kwargs = dict(model="chat:mock-gpt", tools=[RESPONSES_TOOL], extra_headers=CALL_TOOL)
    with client.responses.stream(input="Weather in Paris?", **kwargs) as stream:
        events = list(stream)
        first = stream.get_final_response()
    arg_deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    call = next(o for o in first.output if o.type == "function_call")
    assert call.name == "get_weather"
    assert arg_deltas == call.arguments
    assert isinstance(json.loads(call.arguments)["city"], str)

    follow_up = [
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"},
    ]
    with client.responses.stream(input=follow_up, **kwargs) as stream:
        final = stream.get_final_response()
    assert final.output_text == "Tool result received: Sunny, 21 C"


def test_a_stored_response_cannot_be_continued_through_translation(crossed_url):
    with pytest.raises(openai.BadRequestError) as e:
        oai(crossed_url).responses.create(model="chat:mock-gpt", input="Hi", previous_response_id="resp_1")
    assert "previous_response_id" in str(e.value)
