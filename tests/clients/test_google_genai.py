"""Google's `google-genai` Python SDK through the gateway: generate, stream, count tokens, chats,
async, the model list and embeddings; and models of other protocols' backends (translated),
function calls included."""

import asyncio

import pytest
from conftest import MOCK_TEXT, Client, call_tool, python_version
from google import genai
from google.genai import types

CLIENT = Client(
    name="google-genai (Python)",
    package="PyPI `google-genai`",
    version=python_version("google-genai"),
    base_url="`http://127.0.0.1:8080` (`http_options.base_url`; the SDK adds `/v1`, or `/v1beta` with `api_version`)",
    key="`api_key=` or `GEMINI_API_KEY` (sent as `x-goog-api-key`)",
    setup="`genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=URL))`",
)

MODEL = "gemini-2.5-flash"


def client(gateway, **options):
    options = {"base_url": gateway.url, **options}
    return genai.Client(api_key=gateway.key, http_options=types.HttpOptions(**options))


@pytest.mark.op("generate_content")
def test_generate_content(gateway):
    c = client(gateway)
    r = c.models.generate_content(
        model=MODEL,
        contents="Hello",
        config=types.GenerateContentConfig(system_instruction="Be brief.", temperature=0.2),
    )
    assert r.text == MOCK_TEXT
    assert r.candidates[0].finish_reason == types.FinishReason.STOP
    assert r.usage_metadata.total_token_count > 0
    # v1beta, the API version older SDKs and the REST docs use, works as well.
    v1beta = client(gateway, api_version="v1beta")
    assert v1beta.models.generate_content(model=MODEL, contents="Hi").text == MOCK_TEXT


@pytest.mark.op("generate_content_stream")
def test_generate_content_stream(gateway):
    c = client(gateway)
    chunks = list(c.models.generate_content_stream(model=MODEL, contents="Hello"))
    assert len(chunks) > 1
    assert "".join(c.text for c in chunks) == MOCK_TEXT
    assert chunks[-1].usage_metadata.total_token_count > 0


@pytest.mark.op("count_tokens")
def test_count_tokens(gateway):
    c = client(gateway)
    assert c.models.count_tokens(model=MODEL, contents="Hello").total_tokens > 0


@pytest.mark.op("chats (+stream), async")
def test_chats_and_async(gateway):
    c = client(gateway)
    chat = c.chats.create(model=MODEL)
    assert chat.send_message("Hello").text == MOCK_TEXT
    assert "".join(c.text for c in chat.send_message_stream("Again")) == MOCK_TEXT
    history = chat.get_history()
    assert [h.role for h in history if h.role == "user"] == ["user", "user"]
    assert history[1].role == "model" and history[-1].role == "model"

    async def run():
        aio = c.aio
        r = await aio.models.generate_content(model=MODEL, contents="Hello")
        stream = await aio.models.generate_content_stream(model=MODEL, contents="Hello")
        return r.text, "".join([c.text async for c in stream])

    assert asyncio.run(run()) == (MOCK_TEXT, MOCK_TEXT)


@pytest.mark.op("crossed route: generate_content (+stream) on an OpenAI backend (translated)")
def test_openai_backend_through_translation(gateway):
    c = client(gateway)
    r = c.models.generate_content(model="openai:mock-gpt", contents="Hello")
    assert r.text == MOCK_TEXT
    assert r.candidates[0].finish_reason == types.FinishReason.STOP
    assert r.usage_metadata.total_token_count > 0
    chunks = list(c.models.generate_content_stream(model="openai:mock-gpt", contents="Hello"))
    assert "".join(c.text or "" for c in chunks) == MOCK_TEXT


WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="The weather in a city",
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={"city": types.Schema(type=types.Type.STRING)},
        required=["city"],
    ),
)


def function_call_round_trip(c, model, streamed):
    """Asks for the weather (the mock calls `get_weather`), answers the call; the final text."""
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    contents = [types.Content(role="user", parts=[types.Part(text="Weather in Paris?")])]
    if streamed:
        chunks = list(c.models.generate_content_stream(model=model, contents=contents, config=config))
        calls = [f for ch in chunks for f in ch.function_calls or []]
        turn = types.Content(role="model", parts=[types.Part(function_call=f) for f in calls])
    else:
        r = c.models.generate_content(model=model, contents=contents, config=config)
        calls, turn = r.function_calls, r.candidates[0].content
    assert [(f.name, f.args) for f in calls] == [("get_weather", {"city": "Paris"})]
    result = types.Part.from_function_response(name="get_weather", response={"result": "Sunny, 21 C"})
    result.function_response.id = calls[0].id
    contents += [turn, types.Content(role="user", parts=[result])]
    final = c.models.generate_content(model=model, contents=contents, config=config)
    assert not final.function_calls
    return final.text


@pytest.mark.op("crossed route: function call round trip (+stream) on an Anthropic backend (translated)")
def test_function_call_round_trip_on_an_anthropic_backend(gateway):
    c = client(gateway, headers={"x-mock": call_tool("get_weather", city="Paris")})
    for streamed in (False, True):
        text = function_call_round_trip(c, "anthropic:mock-claude", streamed)
        assert text.startswith("Tool result received: ") and "Sunny, 21 C" in text, text


@pytest.mark.op("models.list / models.get (v1: routed by the Gemini key)")
def test_models_list_and_get(gateway):
    c = client(gateway)
    names = [m.name for m in c.models.list()]
    assert names and all(n.startswith("models/") for n in names)
    assert c.models.get(model=MODEL).name == f"models/{MODEL}"


@pytest.mark.op("embed_content")
def test_embed_content(gateway):
    c = client(gateway)
    r = c.models.embed_content(model="text-embedding-004", contents=["a", "b"])
    assert len(r.embeddings) == 2 and len(r.embeddings[0].values) > 0
