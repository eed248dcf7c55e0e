"""Fixtures: the real `portcullis-mock` and `portcullis` binaries on free ports, and for the SSO
tests an OpenID Connect provider (`oidc-provider-mock`) and a `portcullis serve` with SSO on.

`PORTCULLIS_BIN_DIR` names the directory with the built binaries (default: target/debug).
"""

import json
import os
import pathlib
import queue
import re
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN_DIR = pathlib.Path(os.environ.get("PORTCULLIS_BIN_DIR", ROOT / "target" / "debug"))
UPSTREAM_KEY = "sk-sdk-upstream-key-0123456789"
CLIENT_KEY = "sdk-client-key-0123456789"


class Proc:
    """A child process whose output lines are collected on a thread.

    `stream` is "stdout", "stderr" or "both" (each pipe read on its own thread, lines kept whole).
    `wait_for` consumes lines in arrival order; `log` keeps every line read so far.
    """

    def __init__(self, args, env, stream):
        self.proc = subprocess.Popen(
            args,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stream in ("stdout", "both") else subprocess.DEVNULL,
            stderr=subprocess.PIPE if stream in ("stderr", "both") else subprocess.DEVNULL,
            encoding="utf-8",
            errors="replace",
        )
        self.lines = queue.Queue()
        self.log = []
        pipes = [p for p in (self.proc.stdout, self.proc.stderr) if p is not None]
        self._open = len(pipes)
        for pipe in pipes:
            threading.Thread(target=self._pump, args=(pipe,), daemon=True).start()

    def _pump(self, pipe):
        for line in pipe:
            line = line.rstrip("\n")
            self.log.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, predicate, timeout=30):
        """The first truthy `predicate(line)` among the lines not consumed yet."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            if self._open == 0:
                raise RuntimeError("process exited before the expected line:\n" + "\n".join(seen))
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise TimeoutError(
                    f"no expected line within {timeout} s; lines seen:\n" + "\n".join(seen)
                ) from None
            if line is None:
                self._open -= 1
                continue
            seen.append(line)
            result = predicate(line)
            if result:
                return result

    def drain(self):
        """Forgets the lines not consumed yet (they stay in `log`)."""
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return
            if line is None:
                self._open -= 1

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def clean_env(**extra):
    env = {"PATH": os.environ.get("PATH", "")}
    env.update(extra)
    return env


def serve_env(mock_url, client_key, upstream_key, gemini=False):
    """The environment of a `portcullis serve` configured only through the ecosystem's variables,
    in front of the mock: OpenAI and Anthropic backends (and Gemini with `gemini`), one client key."""
    env = clean_env(
        OPENAI_API_KEY=upstream_key,
        OPENAI_BASE_URL=mock_url + "/v1",
        ANTHROPIC_API_KEY=upstream_key,
        ANTHROPIC_BASE_URL=mock_url,
        PORTCULLIS_API_KEYS=client_key,
        # The mock's fault script is a client header the gateway forwards only when told.
        PORTCULLIS_FORWARD_HEADERS="x-mock",
    )
    if gemini:
        env.update(GEMINI_API_KEY=upstream_key, GEMINI_BASE_URL=mock_url)
    return env


@pytest.fixture(scope="session")
def mock_url():
    p = Proc([str(BIN_DIR / "portcullis-mock"), "--port", "0"], clean_env(), "stdout")
    url = p.wait_for(lambda l: l.split()[-1] if "listening on" in l else None)
    yield url
    p.stop()


def _listening(line):
    try:
        v = json.loads(line)
    except ValueError:
        return None
    if v.get("message") == "portcullis listening":
        return "http://" + v["addr"]
    return None


@pytest.fixture(scope="session")
def serve_url(mock_url):
    """`portcullis serve` configured only through the ecosystem's env vars, pointed at the mock."""
    env = serve_env(mock_url, CLIENT_KEY, UPSTREAM_KEY)
    p = Proc([str(BIN_DIR / "portcullis"), "serve", "--port", "0", "--log-format", "json"], env, "stderr")
    url = p.wait_for(_listening)
    yield url
    p.stop()


@pytest.fixture(scope="session")
def demo_url():
    p = Proc([str(BIN_DIR / "portcullis"), "demo", "--port", "0"], clean_env(), "stdout")
    url = p.wait_for(lambda l: l.split()[5] if l.startswith("portcullis demo is running on") else None)
    yield url
    p.stop()


@pytest.fixture(params=["serve", "demo"])
def gateway_url(request):
    return request.getfixturevalue(request.param + "_url")


# --- SSO: an OpenID Connect provider and a gateway that logs users in through it ---------------

SSO_CLIENT_ID = "portcullis"
SSO_PROVIDER = "mock"
SSO_CLIENT_SECRET = "sso-client-secret-0123456789"


def free_port():
    """A port free right now (the gateway's public URL must be known before it starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _uvicorn_url(line):
    m = re.search(r"Uvicorn running on (http://\S+)", line)
    return m.group(1) if m else None


@pytest.fixture(scope="session")
def idp_url():
    """`oidc-provider-mock` (pinned in requirements.txt) on a free port; its base URL is its issuer.

    Any client id and secret are accepted; PUT {idp_url}/users/<sub> sets a user's claims."""
    p = Proc(
        [sys.executable, "-m", "oidc_provider_mock", "-H", "127.0.0.1", "-p", "0"],
        clean_env(NO_COLOR="1", PYTHONWARNINGS="ignore"),
        "stderr",
    )
    url = p.wait_for(_uvicorn_url)
    discovery = url + "/.well-known/openid-configuration"
    for _ in range(50):
        try:
            if requests.get(discovery, timeout=2).ok:
                break
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    else:
        raise RuntimeError(f"{discovery} does not answer")
    yield url
    p.stop()


def _gateway_listening(line):
    try:
        v = json.loads(line)
    except ValueError:
        return False
    return isinstance(v, dict) and v.get("message") == "portcullis listening"


class SsoGateway:
    """A running `portcullis serve` with SSO on: `url` (also its public URL), `data_dir`, and
    `proc`, whose `wait_for` / `drain` / `log` see the gateway's output (stderr: logs and the
    confirmation banner)."""

    def __init__(self, url, data_dir, proc):
        self.url = url
        self.data_dir = data_dir
        self.proc = proc

    def cli(self, *args):
        """`portcullis <args> --data-dir <data_dir>` on the gateway's store; its stdout."""
        return portcullis_cli(self.data_dir, *args)


def portcullis_cli(data_dir, *args):
    """Runs `portcullis <args> --data-dir <data_dir>` (a store command); its stdout."""
    r = subprocess.run(
        [str(BIN_DIR / "portcullis"), *args, "--data-dir", str(data_dir)],
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        encoding="utf-8",
        timeout=60,
    )
    assert r.returncode == 0, f"portcullis {' '.join(args)} failed ({r.returncode}): {r.stderr}"
    return r.stdout


def start_sso_gateway(mock_url, idp_url, data_dir, **sso_overrides):
    """Starts `portcullis serve --config FILE --port N` with SSO (one OIDC provider, single-user
    confirmation) against `idp_url`, backends `mock` (OpenAI) and `claude` (Anthropic) on the mock
    upstream, and the store in `data_dir`. The caller stops `proc`."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sso = {
        "enabled": True,
        "public_url": url,
        "session_lifetime_hours": 24,
        "providers": {
            SSO_PROVIDER: {
                "type": "oidc",
                "issuer": idp_url,
                "client_id": SSO_CLIENT_ID,
                "client_secret": SSO_CLIENT_SECRET,
                "scopes": ["openid", "email", "profile"],
            }
        },
        "authorization": {"mode": "single_user"},
    }
    sso.update(sso_overrides)
    config = {
        "storage": {"data_dir": str(data_dir)},
        # The sandbox tests send unknown tokens on purpose; keep 127.0.0.1 from being locked out.
        "auth": {"brute_force_protection": {"enabled": False}},
        "backends": {
            "mock": {"type": "openai", "base_url": mock_url + "/v1", "api_key": UPSTREAM_KEY},
            "claude": {"type": "anthropic", "base_url": mock_url, "api_key": UPSTREAM_KEY},
        },
        "sso": sso,
    }
    config_file = pathlib.Path(data_dir) / "portcullis.yaml"
    config_file.write_text(json.dumps(config, indent=2))  # JSON is YAML
    p = Proc(
        [
            str(BIN_DIR / "portcullis"),
            "serve",
            "--config",
            str(config_file),
            "--port",
            str(port),
            "--log-format",
            "json",
        ],
        clean_env(),
        "both",
    )
    try:
        p.wait_for(_gateway_listening, timeout=60)
    except Exception:
        p.stop()
        raise
    return SsoGateway(url, data_dir, p)


@pytest.fixture(scope="session")
def sso_gateway(mock_url, idp_url, tmp_path_factory):
    gw = start_sso_gateway(mock_url, idp_url, tmp_path_factory.mktemp("sso-data"))
    yield gw
    gw.proc.stop()
