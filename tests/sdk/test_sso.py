"""SSO login through the official SDKs and a scripted browser (PRODUCT §3): `portcullis serve` with
SSO on, an OpenID Connect provider (`oidc-provider-mock`), and the mock upstream.

- Without a valid credential, every completion call gets a *sandbox* answer that the OpenAI and
  Anthropic SDKs parse like any other (streaming and not), whose text carries the login link.
- The whole login: link → IdP → callback → console confirmation code → agent token shown once →
  the token works → the link is spent → revoking the token brings the sandbox back.
"""

import html.parser
import json
import re
import time
import urllib.parse

import anthropic
import httpx2
import openai
import pytest
import requests
from conftest import SSO_CLIENT_ID, SSO_PROVIDER, portcullis_cli

MOCK_TEXT = "Hello from portcullis-mock."
OAI_MODEL = "mock:gpt-4o-mini"  # backend `mock` (OpenAI) on the mock upstream
ANT_MODEL = "claude:claude-sonnet-4-5"  # backend `claude` (Anthropic) on the mock upstream
LOGIN_PATH = "/auth/login?t="
LOGIN_URL = re.compile(r"https?://[^\s<>()\[\]\"'`]+/auth/login\?t=[A-Za-z0-9_\-=%.~]+")
TOKEN_IN_PAGE = re.compile(r'<code\b[^>]*\bid="agent-token"[^>]*>\s*(sk-pcl-[^<\s]+)\s*</code>')
CONFIRMATION_CODE = re.compile(r"Confirmation code:\s*(\d{6})\b")
MESSAGES = [{"role": "user", "content": "Hello"}]


# --- clients ------------------------------------------------------------------------------------


def _without_credentials(request):
    for name in ("authorization", "x-api-key", "x-goog-api-key"):
        if name in request.headers:
            del request.headers[name]


def _no_key_http_client():
    # The SDKs insist on a key; the request leaves with none.
    return httpx2.Client(event_hooks={"request": [_without_credentials]})


def oai(url, key):
    """OpenAI SDK client; `key=None` sends no credential at all."""
    if key is None:
        return openai.OpenAI(
            base_url=url + "/v1", api_key="unused", max_retries=0, http_client=_no_key_http_client()
        )
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)


def ant(url, key):
    """Anthropic SDK client; `key=None` sends no credential at all."""
    if key is None:
        return anthropic.Anthropic(
            base_url=url, api_key="unused", max_retries=0, http_client=_no_key_http_client()
        )
    return anthropic.Anthropic(base_url=url, api_key=key, max_retries=0)


def login_url_in(text, gateway_url):
    """The login link in a sandbox text; it points at the gateway's public URL."""
    assert text and LOGIN_PATH in text, f"no login link in: {text!r}"
    m = LOGIN_URL.search(text)
    assert m, f"no well-formed login URL in: {text!r}"
    url = m.group(0).rstrip(".,;:")
    assert url.startswith(gateway_url + LOGIN_PATH), f"{url} is not under {gateway_url}"
    return url


def sandbox_chat(url, key):
    """An OpenAI chat call that must be answered by the sandbox: (text, login URL)."""
    raw = oai(url, key).chat.completions.with_raw_response.create(
        model=OAI_MODEL, messages=MESSAGES
    )
    assert raw.headers.get("x-portcullis-auth") == "required"
    text = raw.parse().choices[0].message.content
    return text, login_url_in(text, url)


# --- a scripted browser -------------------------------------------------------------------------


class _Forms(html.parser.HTMLParser):
    """Every <form>: its method, action and the named inputs' values."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            method = (a.get("method") or "get").lower()
            self.forms.append({"method": method, "action": a.get("action") or "", "fields": {}})
        elif tag in ("input", "button", "textarea") and self.forms and a.get("name"):
            self.forms[-1]["fields"].setdefault(a["name"], a.get("value") or "")


def form_posting_to(page_url, html_text, path):
    """(absolute action URL, fields) of the POST form whose action ends with `path`."""
    parser = _Forms()
    parser.feed(html_text)
    for f in parser.forms:
        action = urllib.parse.urljoin(page_url, f["action"] or page_url)
        if f["method"] == "post" and urllib.parse.urlsplit(action).path.endswith(path):
            return action, dict(f["fields"])
    raise AssertionError(f"no POST form to {path} on {page_url}:\n{html_text}")


def location(resp):
    assert "location" in resp.headers, f"{resp.status_code} without Location: {resp.text[:500]}"
    return urllib.parse.urljoin(resp.url, resp.headers["location"])


def set_cookie(resp, name):
    """The Set-Cookie header (lower-cased) that sets `name`."""
    for value in resp.raw.headers.getlist("Set-Cookie"):
        if value.split("=", 1)[0].strip() == name:
            return value.lower()
    raise AssertionError(f"no Set-Cookie {name} in {resp.status_code}: {dict(resp.headers)}")


def wait_for_code(gw, timeout=30):
    """The 6-digit confirmation code the gateway prints on stderr."""
    return gw.proc.wait_for(
        lambda line: (m := CONFIRMATION_CODE.search(line)) and m.group(1), timeout=timeout
    )


def eventually(check, timeout=10.0, interval=0.1):
    """Calls `check` until it returns something truthy (bounded); returns that, else fails."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {result!r})")
        time.sleep(interval)


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def unknown_token(tmp_path_factory):
    """A well-formed agent token (valid checksum) that the gateway's store has never seen: issued
    by `portcullis tokens issue` into another, throw-away store."""
    out = portcullis_cli(
        tmp_path_factory.mktemp("other-store"), "tokens", "issue", "--user", "ghost@example.com"
    )
    m = re.search(r"sk-pcl-[0-9A-Za-z]{12}_[0-9A-Za-z]+", out)
    assert m, out
    return m.group(0)


@pytest.fixture(params=["no key", "unknown token"])
def no_access(request):
    """What an agent presents that gets it the sandbox: no credential, or an unknown token."""
    return None if request.param == "no key" else request.getfixturevalue("unknown_token")


@pytest.fixture(scope="module")
def alice(idp_url):
    """The IdP user `alice` with an email and a name (both end up in the ID token)."""
    r = requests.put(
        f"{idp_url}/users/alice", json={"email": "alice@example.com", "name": "Alice"}, timeout=10
    )
    assert r.status_code == 204, r.text
    return "alice"


# --- the sandbox, through the SDKs --------------------------------------------------------------


def test_openai_chat_sandbox(sso_gateway, no_access):
    url = sso_gateway.url
    raw = oai(url, no_access).chat.completions.with_raw_response.create(
        model=OAI_MODEL, messages=MESSAGES
    )
    assert raw.http_response.status_code == 200
    assert raw.headers.get("x-portcullis-auth") == "required"
    r = raw.parse()
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].finish_reason == "stop"
    login_url_in(r.choices[0].message.content, url)

    raw = oai(url, no_access).chat.completions.with_raw_response.create(
        model=OAI_MODEL, messages=MESSAGES, stream=True
    )
    assert raw.headers.get("x-portcullis-auth") == "required"
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    login_url_in(text, url)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_openai_responses_sandbox(sso_gateway, no_access):
    url = sso_gateway.url
    client = oai(url, no_access)
    raw = client.responses.with_raw_response.create(model=OAI_MODEL, input="Hello")
    assert raw.headers.get("x-portcullis-auth") == "required"
    r = raw.parse()
    assert r.status == "completed"
    login_url_in(r.output_text, url)

    events = list(client.responses.create(model=OAI_MODEL, input="Hello", stream=True))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    login_url_in(deltas, url)
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    login_url_in(events[-1].response.output_text, url)


def test_anthropic_messages_sandbox(sso_gateway, no_access):
    url = sso_gateway.url
    client = ant(url, no_access)
    raw = client.messages.with_raw_response.create(
        model=ANT_MODEL, max_tokens=1024, messages=MESSAGES
    )
    assert raw.http_response.status_code == 200
    assert raw.headers.get("x-portcullis-auth") == "required"
    m = raw.parse()
    assert m.role == "assistant" and m.stop_reason == "end_turn"
    login_url_in("".join(b.text for b in m.content if b.type == "text"), url)

    with client.messages.stream(model=ANT_MODEL, max_tokens=1024, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    login_url_in(text, url)
    assert final.stop_reason == "end_turn"

    events = list(
        client.messages.create(model=ANT_MODEL, max_tokens=1024, messages=MESSAGES, stream=True)
    )
    types = [e.type for e in events]
    assert types[0] == "message_start" and types[-1] == "message_stop"
    text = "".join(
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    login_url_in(text, url)


def test_other_endpoints_answer_401_with_the_link(sso_gateway, no_access):
    url = sso_gateway.url
    with pytest.raises(openai.AuthenticationError) as exc:
        oai(url, no_access).models.list()
    assert exc.value.response.headers.get("x-portcullis-auth") == "required"
    login_url_in(str(exc.value), url)
    with pytest.raises(anthropic.AuthenticationError) as exc:
        ant(url, no_access).messages.count_tokens(model=ANT_MODEL, messages=MESSAGES)
    assert exc.value.response.headers.get("x-portcullis-auth") == "required"
    login_url_in(str(exc.value), url)


def test_sandbox_over_plain_http(sso_gateway):
    """What an agent without an SDK sees: the same 200 + header, OpenAI and Gemini shapes."""
    url = sso_gateway.url
    r = requests.post(
        url + "/v1/chat/completions", json={"model": OAI_MODEL, "messages": MESSAGES}, timeout=30
    )
    assert r.status_code == 200, r.text
    assert r.headers.get("x-portcullis-auth") == "required"
    login_url_in(r.json()["choices"][0]["message"]["content"], url)

    body = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}
    gemini = url + "/v1beta/models/gemini-2.0-flash"
    r = requests.post(gemini + ":generateContent", json=body, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers.get("x-portcullis-auth") == "required"
    parts = r.json()["candidates"][0]["content"]["parts"]
    login_url_in("".join(p.get("text", "") for p in parts), url)

    r = requests.post(gemini + ":streamGenerateContent?alt=sse", json=body, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers.get("x-portcullis-auth") == "required"
    text = ""
    for line in r.text.splitlines():
        if line.startswith("data:"):
            for cand in json.loads(line[5:]).get("candidates", []):
                text += "".join(p.get("text", "") for p in cand.get("content", {}).get("parts", []))
    login_url_in(text, url)


# --- the login ----------------------------------------------------------------------------------


def log_in_until_confirm(gw, idp_url, browser, sub):
    """Sandbox → login link → IdP (as `sub`) → callback. Returns (login URL, confirmation page URL,
    the code printed on the console)."""
    url = gw.url
    _, login = sandbox_chat(url, None)

    # The login page never uses the link up (a link preview may fetch it); with one provider it
    # submits its form by itself, which a script-less client does by hand.
    r = browser.get(login, allow_redirects=False, timeout=30)
    assert r.status_code == 200, f"GET {login}: {r.status_code} {r.text[:1000]}"
    action, fields = form_posting_to(login, r.text, "/auth/login/" + SSO_PROVIDER)
    r = browser.post(action, data=fields, allow_redirects=False, timeout=30)
    assert r.status_code == 303, f"POST {action}: {r.status_code} {r.text[:1000]}"
    authorize = location(r)
    parts = urllib.parse.urlsplit(authorize)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == idp_url + "/oauth2/authorize"
    q = dict(urllib.parse.parse_qsl(parts.query))
    assert q.get("response_type") == "code"
    assert q.get("client_id") == SSO_CLIENT_ID
    assert q.get("redirect_uri") == url + "/auth/callback"
    assert "openid" in q.get("scope", "").split()
    assert q.get("state") and q.get("nonce")
    assert q.get("code_challenge_method") == "S256"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", q.get("code_challenge", "")), q

    # The IdP's consent form, submitted as `sub`.
    r = browser.post(authorize, data={"sub": sub}, allow_redirects=False, timeout=30)
    assert r.status_code == 302, f"IdP: {r.status_code} {r.text[:1000]}"
    callback = location(r)
    assert callback.startswith(url + "/auth/callback?"), callback
    cq = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))
    assert cq.get("code") and cq.get("state") == q["state"]

    gw.proc.drain()  # only a code printed for this login counts
    r = browser.get(callback, allow_redirects=False, timeout=30)
    assert r.status_code == 303, f"GET {callback}: {r.status_code} {r.text[:1000]}"
    confirm = location(r)
    assert urllib.parse.urlsplit(confirm).path == "/auth/confirm", confirm
    flow = set_cookie(r, "portcullis_flow")
    assert "httponly" in flow and "path=/auth" in flow, flow
    code = wait_for_code(gw)
    return login, confirm, code


def confirmation_form(browser, confirm):
    r = browser.get(confirm, timeout=30)
    assert r.status_code == 200, f"GET {confirm}: {r.status_code} {r.text[:1000]}"
    return form_posting_to(confirm, r.text, "/auth/confirm")


def test_sso_login_flow(sso_gateway, idp_url, alice):
    gw, url = sso_gateway, sso_gateway.url
    browser = requests.Session()
    login, confirm, code = log_in_until_confirm(gw, idp_url, browser, alice)
    # The console banner names the user by the email from the ID token.
    eventually(lambda: any("alice@example.com" in line for line in gw.proc.log), timeout=5)

    action, fields = confirmation_form(browser, confirm)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    r = browser.post(action, data={**fields, "code": wrong}, allow_redirects=False, timeout=30)
    assert r.status_code == 400, f"wrong code: {r.status_code} {r.text[:1000]}"
    assert "attempts remaining" in r.text

    r = browser.post(action, data={**fields, "code": code}, allow_redirects=False, timeout=30)
    assert r.status_code == 200, f"right code: {r.status_code} {r.text[:1000]}"
    assert "no-store" in r.headers.get("cache-control", ""), dict(r.headers)
    m = TOKEN_IN_PAGE.search(r.text)
    assert m, r.text
    token = m.group(1)
    assert re.fullmatch(r"sk-pcl-[0-9A-Za-z]{12}_[0-9A-Za-z]{49}", token), token
    set_cookie(r, "portcullis_session")
    token_id = "sk-pcl-" + token[len("sk-pcl-") :].split("_")[0]

    # The token works with the official SDKs (Bearer and x-api-key), and is never logged.
    raw = oai(url, token).chat.completions.with_raw_response.create(
        model=OAI_MODEL, messages=MESSAGES
    )
    assert "x-portcullis-auth" not in raw.headers
    assert raw.parse().choices[0].message.content == MOCK_TEXT
    m = ant(url, token).messages.create(model=ANT_MODEL, max_tokens=64, messages=MESSAGES)
    assert m.content[0].text == MOCK_TEXT
    assert not [line for line in gw.proc.log if token in line]

    # The admin CLI sees it, owned by alice's email.
    listed = [json.loads(line) for line in gw.cli("tokens", "list", "--json").splitlines() if line]
    mine = [t for t in listed if t["id"] == token_id]
    assert mine and mine[0]["user"] == "alice@example.com" and mine[0]["status"] == "active", listed

    # The login link was single-use.
    page = requests.get(login, allow_redirects=False, timeout=30)
    action, fields = form_posting_to(login, page.text, "/auth/login/" + SSO_PROVIDER)
    r = requests.post(action, data=fields, allow_redirects=False, timeout=30)
    assert r.status_code == 410, f"spent link: {r.status_code} {r.headers.get('location')}"

    # The self-service page lists the device (never the token itself).
    r = browser.get(url + "/auth/devices", allow_redirects=False, timeout=30)
    assert r.status_code == 200, f"/auth/devices: {r.status_code} {r.text[:1000]}"
    assert token_id[len("sk-pcl-") :] in r.text and token not in r.text

    # Revoked: the next requests get the sandbox again (the gateway's cache may lag up to ~1 s).
    assert "revoked" in gw.cli("tokens", "revoke", token_id)

    def sandboxed():
        raw = oai(url, token).chat.completions.with_raw_response.create(
            model=OAI_MODEL, messages=MESSAGES
        )
        return raw.headers.get("x-portcullis-auth") == "required" and raw

    raw = eventually(sandboxed, timeout=10, interval=0.2)
    login_url_in(raw.parse().choices[0].message.content, url)


def test_confirmation_attempts_run_out(sso_gateway, idp_url, alice):
    browser = requests.Session()
    _, confirm, code = log_in_until_confirm(sso_gateway, idp_url, browser, alice)
    action, fields = confirmation_form(browser, confirm)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    statuses = []
    for _ in range(3):  # sso.authorization.max_confirmation_attempts defaults to 3
        r = browser.post(action, data={**fields, "code": wrong}, allow_redirects=False, timeout=30)
        statuses.append(r.status_code)
        if r.status_code != 400:
            break
    assert statuses[0] == 400 and statuses[-1] == 403, statuses
    # Too late for the right code: the login is gone (any refusal), no token.
    r = browser.post(action, data={**fields, "code": code}, allow_redirects=False, timeout=30)
    assert r.status_code >= 400, f"{r.status_code} {r.text[:1000]}"
    assert not TOKEN_IN_PAGE.search(r.text)
