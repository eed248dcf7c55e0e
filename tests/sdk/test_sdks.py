"""The official OpenAI and Anthropic Python SDKs, streaming and not, through the gateway, both
`serve` (pointed at the mock upstream binary) and `demo`."""

import anthropic
import openai
import pytest
from conftest import CLIENT_KEY

MOCK_TEXT = "Hello from portcullis-mock."


def oai(url):
    return openai.OpenAI(base_url=url + "/v1", api_key=CLIENT_KEY, max_retries=0)


def ant(url):
    return anthropic.Anthropic(base_url=url, api_key=CLIENT_KEY, max_retries=0)


def test_openai_chat_completion(gateway_url):
    r = oai(gateway_url).chat.completions.create(
        model="mock-gpt", messages=[{"role": "user", "content": "Hello"}]
    )
    assert r.choices[0].message.content == MOCK_TEXT
    assert r.usage.total_tokens > 0


def test_openai_chat_completion_stream(gateway_url):
    stream = oai(gateway_url).chat.completions.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": "Hello"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if chunk.usage:
            usage = chunk.usage
    assert text == MOCK_TEXT
    assert usage is not None and usage.total_tokens > 0


def test_openai_backend_prefix(gateway_url):
    r = oai(gateway_url).chat.completions.create(
        model="openai:mock-gpt", messages=[{"role": "user", "content": "Hello"}]
    )
    assert r.model == "mock-gpt"


def test_openai_responses(gateway_url):
    client = oai(gateway_url)
    r = client.responses.create(model="mock-gpt", input="Hello")
    assert r.output_text == MOCK_TEXT
    events = list(client.responses.create(model="mock-gpt", input="Hello", stream=True))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == MOCK_TEXT
    assert events[-1].type == "response.completed"


def test_openai_responses_stream_broken_midway_raises(gateway_url):
    # The gateway ends it with `response.failed` (what Codex reads); the SDK raises on its
    # `error` member, with the gateway's message.
    client = oai(gateway_url)
    drop = {"x-mock": "chunks=6; drop_after=3"}
    with pytest.raises(openai.APIError) as exc:
        list(client.responses.create(model="mock-gpt", input="Hi", stream=True, extra_headers=drop))
    assert "broke off" in str(exc.value)
    with pytest.raises(openai.APIError):
        with client.responses.stream(model="mock-gpt", input="Hi", extra_headers=drop) as stream:
            for _ in stream:
                pass


def test_openai_upstream_error_details_reach_the_sdk(gateway_url):
    with pytest.raises(openai.BadRequestError) as exc:
        oai(gateway_url).chat.completions.create(
            model="mock-gpt", messages=[], extra_headers={"x-mock": "status=400"}
        )
    assert exc.value.code == "invalid_request", exc.value.body


def test_openai_embeddings_and_models(gateway_url):
    client = oai(gateway_url)
    e = client.embeddings.create(model="mock-embed", input=["a", "b"])
    assert len(e.data) == 2 and len(e.data[0].embedding) > 0
    ids = [m.id for m in client.models.list()]
    assert "mock-gpt" in ids


def test_openai_errors_are_raised_as_sdk_errors(gateway_url):
    with pytest.raises(openai.NotFoundError) as exc:
        oai(gateway_url).chat.completions.create(model="nope:x", messages=[])
    assert "not configured" in str(exc.value)
    with pytest.raises(openai.RateLimitError):
        oai(gateway_url).chat.completions.create(
            model="mock-gpt", messages=[], extra_headers={"x-mock": "status=429; retry_after=1"}
        )


def test_anthropic_messages(gateway_url):
    r = ant(gateway_url).messages.create(
        model="mock-claude", max_tokens=64, messages=[{"role": "user", "content": "Hello"}]
    )
    assert r.content[0].text == MOCK_TEXT
    assert r.usage.output_tokens > 0


def test_anthropic_messages_stream(gateway_url):
    with ant(gateway_url).messages.stream(
        model="mock-claude", max_tokens=64, messages=[{"role": "user", "content": "Hello"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == MOCK_TEXT
    assert final.stop_reason == "end_turn"
    raw = ant(gateway_url).messages.create(
        model="mock-claude", max_tokens=64, messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    types = [e.type for e in raw]
    assert types[0] == "message_start" and types[-1] == "message_stop"


def test_anthropic_count_tokens_and_errors(gateway_url):
    c = ant(gateway_url)
    n = c.messages.count_tokens(model="mock-claude", messages=[{"role": "user", "content": "Hello"}])
    assert n.input_tokens > 0
    with pytest.raises(anthropic.RateLimitError):
        c.messages.create(
            model="mock-claude",
            max_tokens=5,
            messages=[{"role": "user", "content": "Hi"}],
            extra_headers={"x-mock": "status=429"},
        )


def test_anthropic_stream_broken_midway_raises(gateway_url):
    with pytest.raises(anthropic.APIError):
        with ant(gateway_url).messages.stream(
            model="mock-claude",
            max_tokens=64,
            messages=[{"role": "user", "content": "Hello"}],
            extra_headers={"x-mock": "chunks=6; drop_after=2"},
        ) as stream:
            "".join(stream.text_stream)
