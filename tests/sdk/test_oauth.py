"""The OAuth2 token server with standard clients: Authlib (a general OAuth 2.0 client library)
performs the password and client-credentials grants against the real binary, and the official
OpenAI SDK uses the JWT it got as its API key."""

import subprocess

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from openai import OpenAI

from conftest import BIN_DIR, Proc, _listening, clean_env

PASSWORD = "a long and unguessable passphrase"


@pytest.fixture(scope="module")
def token_server(mock_url, tmp_path_factory):
    data = tmp_path_factory.mktemp("oauth-data")
    add = subprocess.run(
        [str(BIN_DIR / "portcullis"), "users", "add", "alice", "--password-stdin", "--data-dir", str(data)],
        input=PASSWORD + "\n",
        env=clean_env(),
        capture_output=True,
        encoding="utf-8",
        timeout=60,
    )
    assert add.returncode == 0, add.stderr
    out = subprocess.run(
        [str(BIN_DIR / "portcullis"), "clients", "add", "ci", "--data-dir", str(data)],
        env=clean_env(),
        capture_output=True,
        encoding="utf-8",
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    fields = dict(line.split(":", 1) for line in out.stdout.splitlines() if line.strip().startswith("client_"))
    client = (fields["  client_id"].strip(), fields["  client_secret"].strip())
    env = clean_env(OPENAI_API_KEY="sk-upstream", OPENAI_BASE_URL=mock_url + "/v1")
    p = Proc(
        [str(BIN_DIR / "portcullis"), "serve", "--port", "0", "--log-format", "json", "--data-dir", str(data)],
        env,
        "stderr",
    )
    url = p.wait_for(_listening)
    yield url, client
    p.stop()


def test_authlib_password_grant_and_the_openai_sdk(token_server):
    url, _ = token_server
    session = OAuth2Session(client_id="any-public-client")
    token = session.fetch_token(url + "/oauth/token", username="alice", password=PASSWORD)
    assert token["token_type"].lower() == "bearer" and token["expires_in"] == 3600
    llm = OpenAI(base_url=url + "/v1", api_key=token["access_token"], max_retries=0)
    r = llm.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "Hello from portcullis-mock."
    # The seed's verify-token contract.
    v = requests.post(url + "/verify-token", json={"access_token": token["access_token"], "token_type": "bearer"}, timeout=10)
    assert v.status_code == 200 and v.json()["username"] == "alice"
    bad = requests.post(url + "/verify-token", json={"access_token": "nope", "token_type": "bearer"}, timeout=10)
    assert bad.status_code == 401 and bad.json() == {"detail": "Invalid token"}


def test_authlib_client_credentials_and_rfc_errors(token_server):
    url, (client_id, client_secret) = token_server
    session = OAuth2Session(client_id=client_id, client_secret=client_secret)
    token = session.fetch_token(url + "/token", grant_type="client_credentials")
    llm = OpenAI(base_url=url + "/v1", api_key=token["access_token"], max_retries=0)
    assert llm.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]).choices
    # A wrong secret is an RFC 6749 error Authlib understands.
    wrong = OAuth2Session(client_id=client_id, client_secret="not-the-secret")
    with pytest.raises(Exception) as exc:
        wrong.fetch_token(url + "/token", grant_type="client_credentials")
    assert "invalid_client" in str(exc.value)
    # Introspection (RFC 7662) for an authenticated client.
    r = requests.post(url + "/oauth/introspect", data={"token": token["access_token"]}, auth=(client_id, client_secret), timeout=10)
    assert r.status_code == 200 and r.json()["active"] is True
