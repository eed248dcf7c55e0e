"""Codex CLI (`codex exec`, headless) through the gateway's Responses route, as a custom model
provider (`wire_api = "responses"`) in a scratch `CODEX_HOME`, analytics and update checks off; its
shell tool loop, and models of an Anthropic and a Chat-Completions-only backend (translated)."""

import pytest
from conftest import MOCK_TEXT, Client, agent_cli, call_tool, clean_env, npm_version, run_client

CLIENT = Client(
    name="Codex CLI",
    package="npm `@openai/codex`",
    version=npm_version("@openai/codex"),
    base_url='`base_url = "http://127.0.0.1:8080/v1"` in a `[model_providers.<name>]` table',
    key='the variable named by `env_key` (e.g. `env_key = "PORTCULLIS_API_KEY"`)',
    setup='`wire_api = "responses"` (Codex removed `"chat"`); `model_provider = "<name>"`',
)


def config(gateway, key_var="PORTCULLIS_API_KEY", **provider):
    lines = [
        'model = "gpt-4o"',
        'model_provider = "portcullis"',
        "check_for_update_on_startup = false",
        "[analytics]",
        "enabled = false",
        "[model_providers.portcullis]",
        'name = "portcullis"',
        f'base_url = "{gateway.url}/v1"',
        f'env_key = "{key_var}"',
        'wire_api = "responses"',
    ]
    lines += [f"{k} = {v}" for k, v in provider.items()]
    return "\n".join(lines) + "\n"


def codex(gateway, scratch, prompt, key, *args, **provider):
    """`codex exec PROMPT` with the key in `PORTCULLIS_API_KEY`; the completed process."""
    home, work = scratch
    codex_home = home / ".codex"
    codex_home.mkdir(exist_ok=True)
    (codex_home / "config.toml").write_text(config(gateway, **provider))
    env = clean_env(HOME=str(home), CODEX_HOME=str(codex_home), PORTCULLIS_API_KEY=key)
    return run_client([agent_cli("codex"), "exec", "--skip-git-repo-check", *args, prompt], work, env)


@pytest.mark.op("`codex exec` (Responses API, streamed)")
def test_exec(gateway, scratch):
    mark = gateway.mark()
    r = codex(gateway, scratch, "Say hi", gateway.key)
    assert r.returncode == 0, r.stdout + r.stderr
    assert MOCK_TEXT in r.stdout
    calls = gateway.requests_since(mark, "/v1/responses")
    assert [(c["path"], c["status"]) for c in calls] == [("/v1/responses", 200)]


def shell_loop(gateway, scratch, model):
    """Codex's `exec_command` tool running `cat notes.txt` in the scratch work dir (read-only
    sandbox, as `codex exec` runs by default), called by the mock; Codex's output."""
    home, work = scratch
    (work / "notes.txt").write_text("The secret word is tangerine.\n")
    headers = f'{{ "x-mock" = "{call_tool("exec_command", cmd="cat notes.txt")}" }}'
    r = codex(gateway, scratch, "What does notes.txt say?", gateway.key, "-m", model, http_headers=headers)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def backends_since(gateway, mark):
    return {(c["path"], c["status"], c["backend"]) for c in gateway.requests_since(mark, "/v1/responses")}


@pytest.mark.op("agent tool loop: `exec_command` runs `cat`")
def test_shell_tool_loop(gateway, scratch):
    out = shell_loop(gateway, scratch, "gpt-4o")
    assert "Tool result received: " in out and "The secret word is tangerine." in out, out


@pytest.mark.op("crossed route: Codex on an Anthropic backend (translated), with the shell tool loop")
def test_crossed_route_works(gateway, scratch):
    mark = gateway.mark()
    r = codex(gateway, scratch, "Say hi", gateway.key, "-m", "anthropic:mock-claude")
    assert r.returncode == 0, r.stdout + r.stderr
    assert MOCK_TEXT in r.stdout
    assert backends_since(gateway, mark) == {("/v1/responses", 200, "anthropic")}
    out = shell_loop(gateway, scratch, "anthropic:mock-claude")
    assert "Tool result received: " in out and "The secret word is tangerine." in out, out


@pytest.mark.op("crossed route: Codex on a Chat-Completions-only backend (translated), with the shell tool loop")
def test_chat_completions_backend_works(chat_gateway, scratch):
    mark = chat_gateway.mark()
    r = codex(chat_gateway, scratch, "Say hi", chat_gateway.key, "-m", "chat:mock-gpt")
    assert r.returncode == 0, r.stdout + r.stderr
    assert MOCK_TEXT in r.stdout
    assert backends_since(chat_gateway, mark) == {("/v1/responses", 200, "chat")}
    out = shell_loop(chat_gateway, scratch, "chat:mock-gpt")
    assert "Tool result received: " in out and "The secret word is tangerine." in out, out


@pytest.mark.op("upstream stream broken midway: the gateway's message is shown")
def test_broken_stream_shows_the_gateways_message(gateway, scratch):
    # The gateway ends the stream with `response.failed`, which Codex reads by its `type`.
    r = codex(
        gateway,
        scratch,
        "Say hi",
        gateway.key,
        http_headers='{ "x-mock" = "chunks=6; drop_after=2" }',
        stream_max_retries=0,
    )
    assert r.returncode != 0
    assert "broke off" in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.op("a wrong key, retried, does not lock out the right one")
def test_wrong_key_retries_do_not_lock_out(own_gateway, scratch):
    # Codex retries the 401 itself; the same wrong key counts once toward the address lockout.
    gw = own_gateway
    r = codex(gw, scratch, "Say hi", "wrong-key-0123456789abcdef")
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "401" in out or "Invalid API key" in out, out
    r = codex(gw, scratch, "Say hi", gw.key)
    assert r.returncode == 0 and MOCK_TEXT in r.stdout, r.stdout + r.stderr


@pytest.mark.op("provider out of quota: Codex says so instead of retrying")
def test_quota_error_reaches_codex(own_gateway, scratch):
    # The provider's `insufficient_quota` is relayed with its code (and sets the credential
    # aside, hence a gateway of its own), which Codex reports instead of retrying.
    mark = own_gateway.mark()
    quota = '{ "x-mock" = "status=429; error_code=insufficient_quota" }'
    r = codex(own_gateway, scratch, "Say hi", own_gateway.key, http_headers=quota)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "Quota exceeded" in out, out
    calls = own_gateway.requests_since(mark, "/v1/responses")
    assert [c["status"] for c in calls] == [429], calls


@pytest.mark.op("context window exceeded: Codex's own handling")
def test_context_window_error_reaches_codex(own_gateway, scratch):
    ctx = '{ "x-mock" = "status=400; error_code=context_length_exceeded" }'
    r = codex(own_gateway, scratch, "Say hi", own_gateway.key, http_headers=ctx)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "context window" in out, out
