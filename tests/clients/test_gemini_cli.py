"""Gemini CLI (`gemini -p`, headless) through the gateway's Gemini route, with a scratch HOME whose
settings pick API-key auth and turn usage statistics, telemetry and update checks off; its
`read_file` tool loop, and a model of an OpenAI backend (translated)."""

import json

import pytest
from conftest import MOCK_TEXT, Client, agent_cli, call_tool, clean_env, npm_version, run_client

CLIENT = Client(
    name="Gemini CLI",
    package="npm `@google/gemini-cli`",
    version=npm_version("@google/gemini-cli"),
    base_url="`GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:8080`",
    key="`GEMINI_API_KEY`",
    setup='settings `security.auth.selectedType: "gemini-api-key"` (with only the base URL it picks '
    "an auth type it then rejects); headless in an untrusted folder: `GEMINI_CLI_TRUST_WORKSPACE=true`",
)

SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
    "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
}


def gemini(gateway, scratch, *args, **extra_env):
    home, work = scratch
    (home / ".gemini").mkdir(exist_ok=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps(SETTINGS))
    env = clean_env(
        HOME=str(home),
        GOOGLE_GEMINI_BASE_URL=gateway.url,
        GEMINI_API_KEY=gateway.key,
        GEMINI_CLI_TRUST_WORKSPACE="true",
        **extra_env,
    )
    r = run_client([agent_cli("gemini"), *args], work, env)
    assert r.returncode == 0, f"gemini failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


@pytest.mark.op("`gemini -p` (default model: JSON-mode router call, then a stream)")
def test_prompt_with_default_model(gateway, scratch):
    mark = gateway.mark()
    r = gemini(gateway, scratch, "-p", "Say hi")
    assert r.stdout.strip() == MOCK_TEXT
    calls = [c["path"] for c in gateway.requests_since(mark, ":streamGenerateContent")]
    # One routing call (answered with JSON of its schema, so not retried) and the answer.
    assert len(calls) == 2, calls
    assert calls[0].endswith(":generateContent") and calls[1].endswith(":streamGenerateContent")


@pytest.mark.op("`-m <model> --output-format json`")
def test_prompt_with_model_and_json_output(gateway, scratch):
    r = gemini(gateway, scratch, "-m", "gemini-2.5-flash", "--output-format", "json", "-p", "Say hi")
    out = json.loads(r.stdout[r.stdout.index("{") :])
    assert out["response"] == MOCK_TEXT


def read_loop(gateway, scratch, model):
    """Gemini CLI's `read_file` tool on a scratch file, called by the mock; the final answer."""
    notes = scratch[1] / "notes.txt"
    notes.write_text("The secret word is tangerine.")
    headers = f"x-mock: {call_tool('read_file', file_path=str(notes))}"
    r = gemini(gateway, scratch, "-m", model, "-p", "What does notes.txt say?", GEMINI_CLI_CUSTOM_HEADERS=headers)
    return r.stdout.strip()


@pytest.mark.op("agent tool loop: `read_file` on a file")
def test_read_file_tool_loop(gateway, scratch):
    assert read_loop(gateway, scratch, "gemini-2.5-flash") == "Tool result received: The secret word is tangerine."


@pytest.mark.op("crossed route: `-m openai:<model>` on an OpenAI backend (translated), with the `read_file` loop")
def test_crossed_route_works(gateway, scratch):
    mark = gateway.mark()
    r = gemini(gateway, scratch, "-m", "openai:mock-gpt", "-p", "Say hi")
    assert r.stdout.strip() == MOCK_TEXT
    calls = gateway.requests_since(mark, ":streamGenerateContent")
    assert {(c["status"], c["backend"]) for c in calls} == {(200, "openai")}, calls
    assert read_loop(gateway, scratch, "openai:mock-gpt") == "Tool result received: The secret word is tangerine."
