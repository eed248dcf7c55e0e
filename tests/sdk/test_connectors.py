"""The personal-subscription connectors (issue 23) from the official SDKs: `portcullis serve`
with a `codex`, a `gemini_cli`, a `qwen_code` and a `kiro` backend, each importing its CLI's
login file from a temporary directory, in front of `portcullis-mock`'s fakes of their upstreams
(the token endpoints, the ChatGPT Codex backend, Code Assist, the Qwen portal, Kiro's event
stream). Each connector
answers a chat and a streamed chat from the `openai` SDK and a message and a streamed message
from the `anthropic` SDK. The Codex CLI's file holds an expired access token: the refresh
worker renews it at the mock's OpenAI token endpoint (the mock's APIs refuse expired tokens, so
the answers prove the renewed one is used). And `portcullis auths import` stores a login from
the command line, except in multi-user mode; an expired Gemini CLI login is renewed at import
(Code Assist is asked its project with the renewed token).

The files are the CLIs' own formats: the Codex CLI's `auth.json` (JWTs carrying the ChatGPT
account and the expiry), the Gemini CLI's and Qwen Code's `oauth_creds.json` (the mock's
`mock-at-<expiry>-<n>` access tokens, which its APIs accept until that expiry)."""

import base64
import json
import pathlib
import re
import subprocess
import time
import uuid

import anthropic
import openai
import pytest
import requests

from conftest import BIN_DIR, CLIENT_KEY, Proc, _listening, clean_env

MOCK_TEXT = "Hello from portcullis-mock."
MANAGEMENT_KEY = "sdk-management-key-0123456789"
# The mock's Codex backend checks that `chatgpt-account-id` is the token's account.
CODEX_ACCOUNT = "mock-chatgpt-account"
HOUR = 3600

# backend name -> (type, a model, the CLI's file name, the login's token endpoint on the mock)
CONNECTORS = {
    "openai-codex": ("codex", "gpt-5-codex", "auth.json", "/oauth/token"),
    "gemini-oauth-auto": ("gemini_cli", "gemini-2.5-pro", "oauth_creds.json", "/oauth2/token"),
    "qwen-oauth": ("qwen_code", "qwen3-coder-plus", "oauth_creds.json", "/api/v1/oauth2/token"),
    "kiro-oauth-auto": ("kiro", "claude-sonnet-4.5", "kiro-auth-token.json", "/refreshToken"),
}
# The CodeWhisperer profile of the mock's Kiro social logins.
KIRO_PROFILE_ARN = "arn:aws:codewhisperer:us-east-1:123456789012:profile/MOCK"
# The connector whose file holds an expired access token (the CLIs renew theirs lazily, so a
# login file read while the CLI is idle often does).
EXPIRED = "openai-codex"
PAID_PROJECT = "sdk-paid-project"


def jwt(claims):
    """An unsigned JWT (the gateway reads provider tokens, never verifies them)."""
    header, payload = (
        base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
        for part in ({"alg": "none"}, claims)
    )
    return f"{header}.{payload}.sig"


def codex_auth_json(exp, refresh):
    """The Codex CLI's `auth.json` after `codex login`, its access token expiring at `exp`."""
    auth = {"chatgpt_account_id": CODEX_ACCOUNT}
    return json.dumps(
        {
            "OPENAI_API_KEY": None,
            "tokens": {
                "id_token": jwt({"email": "dev@example.com", "https://api.openai.com/auth": auth}),
                "access_token": jwt({"exp": exp, "https://api.openai.com/auth": auth}),
                "refresh_token": refresh,
            },
            "last_refresh": "2026-12-01T00:00:00Z",
        }
    )


def oauth_creds(exp, refresh, **extra):
    """The Gemini CLI's or Qwen Code's `oauth_creds.json`, its access token expiring at `exp`."""
    creds = {
        "access_token": f"mock-at-{exp}-cli",
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expiry_date": exp * 1000,
    }
    creds.update(extra)
    return json.dumps(creds)


def login_file(backend, mock_url, exp, refresh):
    """The text of `backend`'s CLI login file, its access token expiring at `exp`."""
    kind = CONNECTORS[backend][0]
    if kind == "codex":
        return codex_auth_json(exp, refresh)
    if kind == "qwen_code":
        # Qwen Code keeps the account's API host next to the tokens.
        return oauth_creds(exp, refresh, resource_url=mock_url + "/qwen")
    if kind == "kiro":
        # The Kiro IDE's token file after a social (Google/GitHub) sign-in.
        return json.dumps(
            {
                "accessToken": f"mock-at-{exp}-kiro",
                "refreshToken": refresh,
                "expiresAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp)),
                "authMethod": "social",
                "provider": "Google",
                "profileArn": KIRO_PROFILE_ARN,
            }
        )
    return oauth_creds(exp, refresh)


def connector_config(mock_url, files, data_dir):
    """The gateway's configuration: the four connectors on the mock, their logins renewed at
    the mock's token endpoints, the refresh worker checking every second."""
    backends, logins = {}, {}
    for name, (kind, _, _, token_path) in CONNECTORS.items():
        backends[name] = {
            "type": kind,
            "base_url": {
                "codex": mock_url + "/backend-api/codex",
                "gemini_cli": mock_url,
                # Not the account's API: the login's resource_url says where that is.
                "qwen_code": "http://127.0.0.1:9/v1",
                "kiro": mock_url,
            }[kind],
            "credentials_file": str(files[name]),
        }
        logins[name] = {"kind": kind, "token_url": mock_url + token_path}
    backends["gemini-oauth-auto"]["project"] = PAID_PROJECT
    logins["qwen-oauth"]["device_authorization_url"] = mock_url + "/api/v1/oauth2/device/code"
    return {
        "storage": {"data_dir": str(data_dir)},
        "notifications": {"enabled": False},
        "management": {"key": MANAGEMENT_KEY},
        "auth": {
            "api_keys": [{"name": "sdk", "key": CLIENT_KEY}],
            # Tokens valid for the hour are left alone; the expired one is renewed at once.
            "refresh": {"check_interval": "1s", "refresh_lead_time": "5m"},
            "device_login": logins,
        },
        "backends": backends,
    }


def write_logins(mock_url, directory, expired=EXPIRED):
    """Each connector's CLI file under `directory/<backend>/`, the access token of `expired`'s
    already expired, the others' valid for an hour; returns backend -> path. Refresh tokens are
    unique (the mock's OpenAI token endpoint takes each one once)."""
    now = int(time.time())
    files = {}
    for name, (_, _, file_name, _) in CONNECTORS.items():
        path = pathlib.Path(directory) / name / file_name
        path.parent.mkdir(parents=True)
        exp = now - 60 if name == expired else now + HOUR
        path.write_text(login_file(name, mock_url, exp, f"rt-sdk-{name}-{uuid.uuid4().hex}"))
        files[name] = path
    return files


class Gateway:
    """A running `portcullis serve`: `url`, `proc` (its log), `data_dir` (its store)."""

    def __init__(self, url, proc, data_dir):
        self.url = url
        self.proc = proc
        self.data_dir = data_dir

    def management(self, path):
        r = requests.get(
            self.url + path, headers={"Authorization": f"Bearer {MANAGEMENT_KEY}"}, timeout=10
        )
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text}"
        return r.json()

    def log_tail(self, n=40):
        """The gateway's last log lines, without the access log."""
        return "\n".join([l for l in self.proc.log if "portcullis::access" not in l][-n:])


def ready(gw, expired):
    """True once every connector's login is imported and `expired`'s has been renewed."""
    auths = gw.management("/v0/management/auths")["auths"]
    by_backend = {name: [a for a in auths if a["provider"] == name] for name in CONNECTORS}
    if not all(by_backend.values()):
        return False
    refreshed = {
        c["id"]
        for c in gw.management("/v0/management/auths/refresh/status")["credentials"]
        if c["last_refresh"]
    }
    return all(a["id"] in refreshed for a in by_backend[expired])


def start_gateway(mock_url, root, expired, timeout=30):
    """`portcullis serve` on the connectors' logins written under `root`, once they are
    imported and `expired`'s is renewed. The caller stops `proc`."""
    files = write_logins(mock_url, root / "cli", expired)
    config = root / "portcullis.yaml"
    config.write_text(json.dumps(connector_config(mock_url, files, root / "data")))  # JSON is YAML
    p = Proc(
        [str(BIN_DIR / "portcullis"), "serve", "--config", str(config), "--port", "0", "--log-format", "json"],
        clean_env(),
        "stderr",
    )
    try:
        gw = Gateway(p.wait_for(_listening, timeout=60), p, root / "data")
        # The import job runs at start and every 5 s, the refresh worker every second: poll.
        deadline = time.monotonic() + timeout
        while not ready(gw, expired):
            assert time.monotonic() < deadline, "logins not imported and renewed:\n" + gw.log_tail()
            time.sleep(0.1)
    except BaseException:
        p.stop()
        raise
    return gw


@pytest.fixture(scope="module")
def connector_mock():
    """A mock of its own: the connectors' fakes keep state (onboarding, rotated tokens)."""
    p = Proc([str(BIN_DIR / "portcullis-mock"), "--port", "0"], clean_env(), "stdout")
    yield p.wait_for(lambda l: l.split()[-1] if "listening on" in l else None)
    p.stop()


@pytest.fixture(scope="module")
def gateway(connector_mock, tmp_path_factory):
    gw = start_gateway(connector_mock, tmp_path_factory.mktemp("connectors"), EXPIRED)
    yield gw
    gw.proc.stop()


def model(backend):
    return f"{backend}:{CONNECTORS[backend][1]}"


@pytest.mark.parametrize("backend", list(CONNECTORS))
def test_openai_sdk_chat_and_streamed_chat(gateway, backend):
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    messages = [{"role": "user", "content": "Hello"}]
    r = client.chat.completions.create(model=model(backend), messages=messages)
    assert r.choices[0].message.content == MOCK_TEXT, gateway.log_tail()
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0

    stream = client.chat.completions.create(
        model=model(backend), messages=messages, stream=True, stream_options={"include_usage": True}
    )
    text, finish, usage = "", None, None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        usage = chunk.usage or usage
    assert text == MOCK_TEXT, gateway.log_tail()
    assert finish == "stop"
    assert usage is not None and usage.total_tokens > 0


@pytest.mark.parametrize("backend", list(CONNECTORS))
def test_anthropic_sdk_message_and_streamed_message(gateway, backend):
    client = anthropic.Anthropic(base_url=gateway.url, api_key=CLIENT_KEY, max_retries=0)
    messages = [{"role": "user", "content": "Hello"}]
    m = client.messages.create(model=model(backend), max_tokens=100, messages=messages)
    assert m.type == "message" and m.role == "assistant"
    assert m.content[0].text == MOCK_TEXT, gateway.log_tail()
    assert m.stop_reason == "end_turn"
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0

    with client.messages.stream(model=model(backend), max_tokens=100, messages=messages) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == MOCK_TEXT, gateway.log_tail()
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_only_the_expired_login_was_renewed_and_every_login_is_stored_sealed(gateway):
    auths = gateway.management("/v0/management/auths")["auths"]
    status = {c["id"]: c for c in gateway.management("/v0/management/auths/refresh/status")["credentials"]}
    for backend in CONNECTORS:
        mine = [a for a in auths if a["provider"] == backend]
        # The Gemini CLI login pays with the free tier's project and the plan's: two credentials.
        assert len(mine) == (2 if backend == "gemini-oauth-auto" else 1), mine
        for a in mine:
            assert a["type"] == "oauth" and a["source"] == "api", a  # "api": the store
            assert a["expires_at"], a
            s = status.get(a["id"], {})
            assert not s.get("needs_login") and not s.get("last_error"), s
            assert bool(s.get("last_refresh")) == (backend == EXPIRED), (backend, s)
    # Neither the API nor the store's files show a token: the store holds them sealed.
    shown = [json.dumps(auths).encode()]
    shown += [f.read_bytes() for f in gateway.data_dir.rglob("*") if f.is_file()]
    for text in shown:
        for token in (b"rt-sdk-", b"mock-at-", b"mock-rt-codex-", CODEX_ACCOUNT.encode()):
            assert token not in text


def test_an_expired_gemini_cli_login_is_renewed_and_answers(connector_mock, tmp_path):
    """The Gemini CLI's file read while its access token has run out (the CLI renews it only
    when it next runs): the gateway renews it with the refresh token and answers."""
    gw = start_gateway(connector_mock, tmp_path, "gemini-oauth-auto", timeout=10)
    try:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
        r = client.chat.completions.create(
            model=model("gemini-oauth-auto"), messages=[{"role": "user", "content": "Hello"}]
        )
        assert r.choices[0].message.content == MOCK_TEXT, gw.log_tail()
    finally:
        gw.proc.stop()


# --- `portcullis auths import` from the command line --------------------------------------------


def cli(config, data_dir, *args, env=None):
    """`portcullis <args> --config <config> --data-dir <data_dir>`, finished."""
    return subprocess.run(
        [str(BIN_DIR / "portcullis"), *args, "--config", str(config), "--data-dir", str(data_dir)],
        env=clean_env(**(env or {})),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        encoding="utf-8",
        timeout=60,
    )


def stored_providers(config, data_dir):
    """The backends with a credential in the store (`auths list --json`)."""
    listed = cli(config, data_dir, "auths", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return {json.loads(line)["provider"] for line in listed.stdout.splitlines()}


@pytest.fixture
def cli_setup(connector_mock, tmp_path):
    """Fresh login files, a configuration naming them, and an empty data directory."""
    files = write_logins(connector_mock, tmp_path / "cli")
    config = tmp_path / "portcullis.yaml"
    config.write_text(json.dumps(connector_config(connector_mock, files, tmp_path / "data")))
    return config, tmp_path / "data", files


@pytest.mark.parametrize("backend", list(CONNECTORS))
def test_auths_import_stores_the_cli_login(cli_setup, backend):
    config, data, files = cli_setup
    r = cli(config, data, "auths", "import", backend, "--file", str(files[backend]))
    assert r.returncode == 0, r.stderr
    m = re.match(rf"imported {re.escape(str(files[backend]))} into backend {backend} as (.+?);", r.stdout)
    assert m, r.stdout
    ids = m.group(1).split(", ")
    listed = cli(config, data, "auths", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    stored = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(ids) == (2 if backend == "gemini-oauth-auto" else 1), r.stdout
    assert sorted(c["id"] for c in stored if c["provider"] == backend) == sorted(ids), listed.stdout
    assert all(c["type"] == "oauth" for c in stored if c["id"] in ids)


@pytest.mark.parametrize("how", ["access_mode", "LLM_PROXY_ACCESS_MODE"])
def test_auths_import_is_refused_in_multi_user_mode(cli_setup, how):
    config, data, files = cli_setup
    multi, env = config, {}
    if how == "access_mode":
        settings = json.loads(config.read_text())
        settings["access_mode"] = {"mode": "multi_user"}
        multi = config.with_name("multi-user.yaml")
        multi.write_text(json.dumps(settings))
    else:
        env[how] = "multi_user"
    r = cli(multi, data, "auths", "import", "openai-codex", "--file", str(files["openai-codex"]), env=env)
    assert r.returncode != 0, r.stdout
    assert "not available in multi-user mode" in r.stderr, r.stderr
    # Nothing was stored (listed in single-user mode, which shows OAuth credentials).
    assert stored_providers(config, data) == set()


def test_auths_takes_the_access_mode_from_the_configuration_not_the_serve_flag(cli_setup):
    """`--multi-user-mode` is a serving option: `auths` refuses it rather than ignore it."""
    config, data, files = cli_setup
    r = cli(config, data, "--multi-user-mode", "auths", "import", "openai-codex", "--file", str(files["openai-codex"]))
    assert r.returncode != 0, r.stdout
    assert "does not take serving options" in r.stderr, r.stderr
    assert stored_providers(config, data) == set()
