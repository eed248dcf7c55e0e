"""Claude Code (`claude -p`, headless) through the gateway's Anthropic route, with a scratch HOME
and its telemetry, error reporting and update checks off; its Read tool loop, and a model of an
OpenAI backend (translated)."""

import json

import pytest
from conftest import MOCK_TEXT, Client, agent_cli, call_tool, clean_env, npm_version, run_client

CLIENT = Client(
    name="Claude Code",
    package="npm `@anthropic-ai/claude-code`",
    version=npm_version("@anthropic-ai/claude-code"),
    base_url="`ANTHROPIC_BASE_URL=http://127.0.0.1:8080`",
    key="`ANTHROPIC_API_KEY` (or `ANTHROPIC_AUTH_TOKEN`, sent as Bearer)",
    setup="the model name passes through (`--model`, or Claude Code's default)",
)

QUIET = {
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
}


def claude(gateway, scratch, *args, **env):
    home, work = scratch
    env = clean_env(HOME=str(home), ANTHROPIC_BASE_URL=gateway.url, **QUIET, **env)
    r = run_client([agent_cli("claude"), "-p", *args], work, env)
    assert r.returncode == 0, f"claude failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r.stdout


@pytest.mark.op("`claude -p` (x-api-key)")
def test_print_mode(gateway, scratch):
    mark = gateway.mark()
    out = claude(gateway, scratch, "Say hi", ANTHROPIC_API_KEY=gateway.key)
    assert out.strip() == MOCK_TEXT
    calls = gateway.requests_since(mark, "/v1/messages")
    assert [(c["status"], c["backend"]) for c in calls if c["path"] == "/v1/messages"] == [(200, "anthropic")]


@pytest.mark.op("`--output-format stream-json`, `ANTHROPIC_AUTH_TOKEN`")
def test_stream_json_with_bearer_token(gateway, scratch):
    out = claude(
        gateway,
        scratch,
        "Say hi",
        "--output-format",
        "stream-json",
        "--verbose",
        ANTHROPIC_AUTH_TOKEN=gateway.key,
    )
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    result = [e for e in events if e.get("type") == "result"]
    assert result and result[-1]["result"] == MOCK_TEXT and not result[-1]["is_error"]
    assert result[-1]["usage"]["output_tokens"] > 0


# Claude Code puts `role: "system"` messages among `messages` (its environment notes) for a model
# it does not know; the Anthropic API accepts them anywhere, the translation answers 400
# "`messages[1].role` must be \"user\" or \"assistant\"" (src/translate/anthropic/request.rs).
def read_loop(gateway, scratch, model):
    """Claude Code's Read tool on a scratch file, called by the mock; Claude Code's final answer
    and the access log's (status, backend) of its Messages calls."""
    home, work = scratch
    notes = work / "notes.txt"
    notes.write_text("The secret word is tangerine.")
    mark = gateway.mark()
    headers = f"x-mock: {call_tool('Read', file_path=str(notes))}"
    out = claude(
        gateway,
        scratch,
        "What does notes.txt say?",
        "--model",
        model,
        "--allowedTools",
        "Read",
        ANTHROPIC_API_KEY=gateway.key,
        ANTHROPIC_CUSTOM_HEADERS=headers,
    )
    calls = gateway.requests_since(mark, "/v1/messages")
    return out, {(c["status"], c["backend"]) for c in calls if c["path"] == "/v1/messages"}


@pytest.mark.op("agent tool loop: the Read tool on a file")
def test_read_tool_loop(gateway, scratch):
    out, calls = read_loop(gateway, scratch, "anthropic:mock-claude")
    assert out.startswith("Tool result received: ") and "The secret word is tangerine." in out, out
    assert calls == {(200, "anthropic")}


@pytest.mark.op("crossed route: Claude Code on an OpenAI backend (translated)")
def test_crossed_route_works(gateway, scratch):
    mark = gateway.mark()
    out = claude(gateway, scratch, "Say hi", "--model", "openai:mock-gpt", ANTHROPIC_API_KEY=gateway.key)
    assert out.strip() == MOCK_TEXT
    calls = gateway.requests_since(mark, "/v1/messages")
    assert {(c["status"], c["backend"]) for c in calls if c["path"] == "/v1/messages"} == {(200, "openai")}


@pytest.mark.op("crossed route: the Read tool loop on an OpenAI backend (translated)")
def test_crossed_route_read_tool_loop(gateway, scratch):
    out, calls = read_loop(gateway, scratch, "openai:mock-gpt")
    assert out.startswith("Tool result received: ") and "The secret word is tangerine." in out, out
    assert calls == {(200, "openai")}
