"""Fixtures and result rows for the real-client tests.

`gateway`: the real `portcullis-mock` and a `portcullis serve` in front of it (backends `openai`,
`anthropic`, `gemini` from the ecosystem's env vars, client auth on, brute-force protection at its
defaults, `x-mock` forwarded so a test can script the mock's answer), on free ports; started
with the SDK tests' helpers (tests/sdk/conftest.py). `own_gateway` starts another one for a test
that sends wrong keys. `chat_gateway` is one from a config file whose backend `chat` is an OpenAI
backend without the Responses API (`responses_api: chat_completions`). A model `<backend>:<name>`
(`openai:mock-gpt`, `anthropic:mock-claude`, `gemini:mock-gemini`) picks the backend, so a client
of one protocol reaches a backend of another through the gateway's protocol translation.

Each test module names its client in `CLIENT` (see `Client`); each test marks the operation it
checks with `@pytest.mark.op("…")`. When `PORTCULLIS_CLIENT_RESULTS` names a directory, the
session writes one `<slug>.json` per client there: the client's facts and each operation's
outcome (passed, failed, xfail with its reason). `scripts/client-table` renders README's client
table from these files.
"""

import dataclasses
import importlib.util
import json
import os
import pathlib
import subprocess
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _load_sdk_harness():
    spec = importlib.util.spec_from_file_location("sdk_harness", ROOT / "tests" / "sdk" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_sdk = _load_sdk_harness()
Proc, clean_env, BIN_DIR = _sdk.Proc, _sdk.clean_env, _sdk.BIN_DIR
mock_url = _sdk.mock_url  # the session's `portcullis-mock` (a fixture)

MOCK_TEXT = "Hello from portcullis-mock."
CLIENT_KEY = "clients-gateway-key-0123456789"
UPSTREAM_KEY = "sk-clients-upstream-0123456789"
AGENTS_BIN = ROOT / "tests" / "clients" / "agents" / "node_modules" / ".bin"


@dataclasses.dataclass
class Client:
    """One client as README's table shows it."""

    name: str  # as users know it
    package: str  # registry and package name, e.g. "PyPI `google-genai`"
    version: str  # of the installed package ("not installed" when missing)
    base_url: str  # the base URL form it needs (host 127.0.0.1:8080 in the table)
    key: str  # where the gateway key goes
    setup: str = ""  # the settings it needs beyond base URL and key
    limits: str = ""  # what it cannot do through the gateway today, besides expected failures


def python_version(package, python=None):
    """The installed version of a Python package, in this interpreter or in `python`'s."""
    if python is None:
        import importlib.metadata

        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"
    if not pathlib.Path(python).exists():
        return "not installed"
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    r = subprocess.run([python, "-c", code], capture_output=True, encoding="utf-8", timeout=60)
    return r.stdout.strip() if r.returncode == 0 else "not installed"


def npm_version(package):
    """The version of an npm package installed under tests/clients/agents."""
    manifest = AGENTS_BIN.parent / package / "package.json"
    if not manifest.exists():
        return "not installed"
    return json.loads(manifest.read_text())["version"]


def _request_record(line):
    try:
        v = json.loads(line)
    except ValueError:
        return None
    return v if isinstance(v, dict) and v.get("message") == "request" else None


class Gateway:
    """A running mock + `portcullis serve`; `url` is the gateway, `key` its client key."""

    def __init__(self, mock_url, url, proc):
        self.mock_url = mock_url
        self.url = url
        self.proc = proc
        self.key = CLIENT_KEY

    def mark(self):
        """A point in the gateway's log; `requests_since` reads what came after it."""
        self.proc.drain()
        return len(self.proc.log)

    def requests_since(self, mark, last_path):
        """The access-log records after `mark`, once one whose path ends in `last_path` is logged
        (the log line is written when the response ends, after the client may have exited)."""
        self.proc.wait_for(lambda l: (r := _request_record(l)) and r["path"].endswith(last_path))
        records = (_request_record(line) for line in self.proc.log[mark:])
        return [r for r in records if r]


def start_gateway(mock_url, *extra_args):
    env = _sdk.serve_env(mock_url, CLIENT_KEY, UPSTREAM_KEY, gemini=True)
    args = [str(BIN_DIR / "portcullis"), "serve", "--port", "0", "--log-format", "json", *extra_args]
    p = Proc(args, env, "stderr")
    url = p.wait_for(_sdk._listening)
    return Gateway(mock_url, url, p)


@pytest.fixture(scope="session")
def gateway(mock_url):
    gw = start_gateway(mock_url)
    yield gw
    gw.proc.stop()


@pytest.fixture(scope="session")
def chat_gateway(mock_url, tmp_path_factory):
    """A gateway whose only backend, `chat`, speaks Chat Completions but not the Responses API."""
    backend = {"type": "openai", "base_url": mock_url + "/v1", "api_key": UPSTREAM_KEY}
    backend |= {"forward_headers": ["x-mock"], "responses_api": "chat_completions"}
    config = {"auth": {"api_keys": [{"name": "clients", "key": CLIENT_KEY}]}, "backends": {"chat": backend}}
    path = tmp_path_factory.mktemp("chat-gateway") / "portcullis.yaml"
    path.write_text(json.dumps(config))
    args = [str(BIN_DIR / "portcullis"), "serve", "--config", str(path), "--port", "0", "--log-format", "json"]
    p = Proc(args, clean_env(), "stderr")
    gw = Gateway(mock_url, p.wait_for(_sdk._listening), p)
    yield gw
    p.stop()


def call_tool(name, **args):
    """The `x-mock` value that makes the mock call tool `name` with exactly `args` (the mock
    answers the request that ends in the tool's result with `Tool result received: <result>`)."""
    return f"tool={name}; tool_args={urllib.parse.quote(json.dumps(args))}"


@pytest.fixture
def own_gateway(mock_url):
    """A gateway of its own for a test that sends wrong keys (brute-force protection at its
    defaults counts them against 127.0.0.1)."""
    gw = start_gateway(mock_url)
    yield gw
    gw.proc.stop()


@pytest.fixture
def scratch(tmp_path):
    """A scratch HOME and working directory for one client run."""
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    return home, work


def run_client(args, cwd, env, timeout=180):
    """Runs a client command without a terminal or input; the completed process (text output)."""
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
    )


def agent_cli(name):
    """The path of an agent CLI installed under tests/clients/agents, or skip."""
    path = AGENTS_BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed (scripts/test runs npm ci in tests/clients/agents)")
    return path


# --- result rows ---------------------------------------------------------------------------------


def pytest_configure(config):
    config.addinivalue_line("markers", "op(name): the client operation a test checks (README table)")
    # The client libraries' own deprecation notes are not this suite's business.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning")
    config.addinivalue_line("filterwarnings", "ignore::UserWarning")
    config._client_rows = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    client = getattr(item.module, "CLIENT", None)
    marker = item.get_closest_marker("op")
    if client is None or marker is None:
        return report
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if report.skipped and hasattr(report, "wasxfail"):
            outcome, reason = "xfail", report.wasxfail
        elif report.skipped:
            outcome, reason = "skipped", str(report.longrepr[-1]) if report.longrepr else ""
        else:
            outcome, reason = report.outcome, ""
        rows = item.config._client_rows.setdefault(client.name, (client, []))[1]
        rows.append({"op": marker.args[0], "outcome": outcome, "reason": reason})
    return report


def pytest_sessionfinish(session):
    out = os.environ.get("PORTCULLIS_CLIENT_RESULTS")
    if not out:
        return
    write_results(pathlib.Path(out), session.config._client_rows.values())


def write_results(directory, clients):
    """Writes `<slug>.json` per (Client, rows) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    for client, rows in clients:
        slug = "".join(c if c.isalnum() else "-" for c in client.name.lower()).strip("-")
        record = dataclasses.asdict(client) | {"operations": rows}
        (directory / f"{slug}.json").write_text(json.dumps(record, indent=2) + "\n")

