"""`litellm` as a client library (not its proxy): `openai/…`, `anthropic/…` and `gemini/…` models
through the gateway, streamed and not."""

import asyncio
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch of the price list

import litellm  # noqa: E402
import pytest  # noqa: E402
from conftest import MOCK_TEXT, Client, python_version  # noqa: E402

litellm.telemetry = False

CLIENT = Client(
    name="litellm (Python library)",
    package="PyPI `litellm`",
    version=python_version("litellm"),
    base_url="`openai/…`: `http://127.0.0.1:8080/v1`; `anthropic/…`: `http://127.0.0.1:8080`; "
    "`gemini/…`: `http://127.0.0.1:8080/v1beta` or the root URL",
    key="`api_key=` (or `OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, `GEMINI_API_KEY`)",
    setup="`api_base=` per call (or `OPENAI_API_BASE`, `ANTHROPIC_API_BASE`, `GEMINI_API_BASE`); "
    "with the root URL as Gemini base litellm posts `/models/…` without a version, which the "
    "gateway accepts",
)

MESSAGES = [{"role": "user", "content": "Hello"}]


def complete(gateway, model, base, **kwargs):
    return litellm.completion(model=model, messages=MESSAGES, api_base=base, api_key=gateway.key, **kwargs)


def streamed_text(stream):
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


@pytest.mark.op("`openai/` completion, stream (+usage), acompletion")
def test_openai_completion_and_stream(gateway):
    base = gateway.url + "/v1"
    r = complete(gateway, "openai/gpt-4o", base)
    assert r.choices[0].message.content == MOCK_TEXT
    assert r.usage.total_tokens > 0
    chunks = list(complete(gateway, "openai/gpt-4o", base, stream=True, stream_options={"include_usage": True}))
    assert streamed_text(chunks) == MOCK_TEXT
    assert any(getattr(c, "usage", None) and c.usage.total_tokens > 0 for c in chunks)

    async def run():
        return await litellm.acompletion(
            model="openai/gpt-4o", messages=MESSAGES, api_base=base, api_key=gateway.key
        )

    assert asyncio.run(run()).choices[0].message.content == MOCK_TEXT


@pytest.mark.op("`openai/` responses, embedding")
def test_openai_responses_and_embedding(gateway):
    base = gateway.url + "/v1"
    r = litellm.responses(model="openai/gpt-4o", input="Hello", api_base=base, api_key=gateway.key)
    assert r.output[0].content[0].text == MOCK_TEXT
    e = litellm.embedding(model="openai/text-embedding-3-small", input=["a", "b"], api_base=base, api_key=gateway.key)
    assert len(e.data) == 2 and len(e.data[0]["embedding"]) > 0


@pytest.mark.op("`anthropic/` completion, stream")
def test_anthropic_completion_and_stream(gateway):
    r = complete(gateway, "anthropic/claude-sonnet-4-5", gateway.url)
    assert r.choices[0].message.content == MOCK_TEXT
    assert r.usage.completion_tokens > 0
    assert streamed_text(complete(gateway, "anthropic/claude-sonnet-4-5", gateway.url, stream=True)) == MOCK_TEXT


@pytest.mark.op("`gemini/` completion, stream (base `…/v1beta`)")
def test_gemini_completion_and_stream(gateway):
    base = gateway.url + "/v1beta"
    r = complete(gateway, "gemini/gemini-2.5-flash", base)
    assert r.choices[0].message.content == MOCK_TEXT
    assert r.usage.total_tokens > 0
    assert streamed_text(complete(gateway, "gemini/gemini-2.5-flash", base, stream=True)) == MOCK_TEXT


@pytest.mark.op("crossed route: `openai/` completion, stream on an Anthropic backend (translated)")
def test_crossed_route_works(gateway):
    base = gateway.url + "/v1"
    r = complete(gateway, "openai/anthropic:mock-claude", base)
    assert r.choices[0].message.content == MOCK_TEXT
    assert r.usage.total_tokens > 0
    assert streamed_text(complete(gateway, "openai/anthropic:mock-claude", base, stream=True)) == MOCK_TEXT


@pytest.mark.op("`gemini/` with the root base URL (unprefixed Gemini paths)")
def test_gemini_root_base_url(gateway):
    r = complete(gateway, "gemini/gemini-2.5-flash", gateway.url)
    assert r.choices[0].message.content == MOCK_TEXT
