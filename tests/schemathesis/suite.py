"""Schema-driven tests of the management API, run by tests/schemathesis/run.

Starts `portcullis-mock` and `portcullis serve` (debug binaries from `PORTCULLIS_BIN_DIR`, else
`$CARGO_TARGET_DIR/debug`, else target/debug) on free ports with a temporary configuration: a
SQLite store in a temporary directory, a management key, a static client key, upstream keys in
the configuration, a credential file and the store. Seeds the store through the CLI (an agent
token, a virtual key, a service client, a local user, a stored credential) and sends a request
with the virtual key so the usage report has rows. Then runs schemathesis (settings in
schemathesis.toml, hooks in hooks.py) over the document the gateway serves, three times:

1. with the management key: every operation, positive and negative data;
2. without any key (every answer a 401);
3. with keys schemathesis makes up (wrong ones: 401, then the lockout's 429).

Checks: no 5xx, status codes, content types and bodies as documented, no secret in any answer
(hooks.py). Afterwards the gateway must still run, and its log must hold no panic and none of
the configured secrets. Exits non-zero on any failure.
"""

import json
import os
import pathlib
import re
import secrets
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
BIN_DIR = pathlib.Path(os.environ.get("PORTCULLIS_BIN_DIR") or TARGET / "debug")
ST = pathlib.Path(sys.executable).parent / "st"
DOC = "/v0/management/openapi.json"
ALPHABET = string.ascii_letters + string.digits


def random_secret(n=40):
    return "".join(secrets.choice(ALPHABET) for _ in range(n))


class Process:
    """A child whose output lines are kept (a thread drains the pipe)."""

    def __init__(self, args, env=None):
        self.args = args
        self.proc = subprocess.Popen(
            args,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            encoding="utf-8",
            errors="replace",
        )
        self.lines = []
        self.seen = threading.Condition()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stdout:
            with self.seen:
                self.lines.append(line.rstrip("\n"))
                self.seen.notify_all()
        with self.seen:
            self.seen.notify_all()

    def wait_for(self, pick, timeout=60):
        """The first non-None `pick(line)`; fails when the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        checked = 0
        with self.seen:
            while True:
                for line in self.lines[checked:]:
                    found = pick(line)
                    if found is not None:
                        return found
                checked = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    log = "\n".join(self.lines)
                    raise RuntimeError(f"{self.args[0]}: no expected line\n{log}")
                self.seen.wait(left)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def cli(config, *args, stdin=None, env=None):
    """`portcullis <args> --config <config>`; its stdout (fails on a non-zero exit)."""
    r = subprocess.run(
        [str(BIN_DIR / "portcullis"), *args, "--config", str(config)],
        input=stdin,
        env={**os.environ, **(env or {})},
        capture_output=True,
        encoding="utf-8",
        timeout=120,
    )
    if r.returncode != 0:
        raise RuntimeError(f"portcullis {args[0]} {args[1]} failed: {r.stderr}")
    return r.stdout


def gateway_listening(line):
    try:
        v = json.loads(line)
    except ValueError:
        return None
    if isinstance(v, dict) and v.get("message") == "portcullis listening":
        return "http://" + v["addr"]
    return None


def http(method, url, headers, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    if data is not None:
        req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.read()


def maxima(doc):
    """`{"PUT /path": {"member": [maximum]}}`: the request bodies' top-level members with a
    documented maximum, values the hooks send besides schemathesis's own."""

    def resolve(schema):
        while "$ref" in schema:
            target = doc
            for part in schema["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            schema = target
        return schema

    found = {}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            members = resolve(body.get("schema", {})).get("properties", {})
            edges = {name: [resolve(m)["maximum"]] for name, m in members.items()
                     if "maximum" in resolve(m)}
            if edges:
                found[f"{method.upper()} {path}"] = edges
    return found


class Setup:
    """The gateway under test, its secrets and the fixtures the hooks read."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.secrets = {
            "management key": random_secret(),
            "static client key": random_secret(),
            "openai upstream key (configuration)": "sk-" + random_secret(),
            "openai second upstream key (configuration)": "sk-" + random_secret(),
            "anthropic upstream key (configuration)": "sk-ant-" + random_secret(),
            "anthropic upstream key (credential file)": "sk-ant-" + random_secret(),
            "openai upstream key (unreadable credential file)": "sk-" + random_secret(),
            "openai upstream key (store, 1)": "sk-" + random_secret(),
            "openai upstream key (store, 2)": "sk-" + random_secret(),
            "openai upstream key (store, 3)": "sk-" + random_secret(),
            "anthropic upstream key (store, 1)": "sk-ant-" + random_secret(),
            "anthropic upstream key (store, 2)": "sk-ant-" + random_secret(),
            "anthropic upstream key (store, 3)": "sk-ant-" + random_secret(),
            "local user's password": random_secret(24),
        }
        self.processes = []

    def start(self):
        s = self.secrets
        mock = self.spawn([str(BIN_DIR / "portcullis-mock"), "--port", "0"])
        mock_url = mock.wait_for(lambda l: l.split()[-1] if "listening on" in l else None)
        auths = self.tmp / "auths"
        auths.mkdir()
        (auths / "anthropic.json").write_text(
            json.dumps({"token": s["anthropic upstream key (credential file)"], "priority": 5})
        )
        # Not a credential file (the key alone, quoted): skipped, and listed under `errors`.
        (auths / "openai.json").write_text(
            json.dumps(s["openai upstream key (unreadable credential file)"])
        )
        config = {
            "server": {"host": "127.0.0.1", "port": 0},
            "storage": {"data_dir": str(self.tmp / "data")},
            "auth": {
                "api_keys": [{"name": "schemathesis", "key": s["static client key"]}],
                "credentials_dir": str(auths),
            },
            "backends": {
                "openai": {
                    "type": "openai",
                    "base_url": mock_url + "/v1",
                    "api_key": s["openai upstream key (configuration)"],
                    "credentials": [
                        {"api_key": s["openai second upstream key (configuration)"], "priority": 2}
                    ],
                },
                "anthropic": {
                    "type": "anthropic",
                    "base_url": mock_url,
                    "api_key": s["anthropic upstream key (configuration)"],
                },
            },
            "management": {"key": s["management key"]},
            "notifications": {"enabled": False},
        }
        self.config = self.tmp / "portcullis.yaml"
        self.config.write_text(json.dumps(config, indent=2))  # JSON is YAML
        fixtures = self.seed()
        gateway = self.spawn(
            [str(BIN_DIR / "portcullis"), "serve", "--config", str(self.config), "--log-format", "json"]
        )
        self.gateway = gateway
        self.url = gateway.wait_for(gateway_listening)
        # A metered request (the virtual key), so the usage report has rows.
        status, _ = http(
            "POST",
            self.url + "/v1/chat/completions",
            {"authorization": "Bearer " + self.secrets["virtual key"]},
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert status == 200, status
        key = self.secrets["encryption key (data directory)"] = (
            (self.tmp / "data" / "encryption.key").read_text().strip()
        )
        assert key, "the store sealed the stored credential with a generated key"
        credentials = self.credentials()
        fixtures["credentials"] = [c[:2] for c in credentials if c[2] != "deletable"]
        fixtures["deletable"] = [c[:2] for c in credentials if c[2] == "deletable"]
        fixtures["secrets"] = self.secrets
        # The served document (it needs the key too); schemathesis reads it from a file so that
        # it tests the document's own operation too.
        _, doc = http("GET", self.url + DOC, self.key_header())
        self.doc = self.tmp / "openapi.json"
        self.doc.write_bytes(doc)
        doc = json.loads(doc)
        self.operations = {f"{m.upper()} {path}" for path, item in doc["paths"].items() for m in item}
        fixtures["maxima"] = maxima(doc)
        # Credential tokens the run sends (never shown back, nor after they are stored).
        fixtures["new_tokens"] = ["sk-" + random_secret() for _ in range(3)]
        path = self.tmp / "fixtures.json"
        path.write_text(json.dumps(fixtures, indent=2))
        return path

    def spawn(self, args):
        p = Process(args, env={"PATH": os.environ.get("PATH", "")})
        self.processes.append(p)
        return p

    def seed(self):
        """The store's objects, through the CLI; the ids and values the hooks may use."""
        s, c = self.secrets, self.config
        out = cli(c, "tokens", "issue", "--user", "alice@example.com", "--name", "laptop")
        token = re.search(r"sk-pcl-\S+_\S+", out).group(0)
        s["agent token"] = token
        key = json.loads(cli(c, "keys", "create", "--name", "seed", "--json"))
        s["virtual key"] = key["key"]
        out = cli(c, "clients", "add", "ci")
        s["service client secret"] = re.search(r"client_secret:\s+(\S+)", out).group(1)
        cli(c, "users", "add", "bob", "--email", "bob@example.com", "--password-stdin",
            stdin=s["local user's password"] + "\n")
        # Several per provider: one the run may delete, the others for the other operations.
        for name, value in list(s.items()):
            if "(store," in name:
                label = "deletable" if name.endswith("1)") else "kept"
                cli(c, "auths", "add", "--provider", name.split()[0], "--token-env",
                    "ST_POOL_TOKEN", "--label", label, env={"ST_POOL_TOKEN": value})
        users = [line.split() for line in cli(c, "users", "list").splitlines()[1:] if line.strip()]
        token_id = token.partition("_")[0]
        today = time.strftime("%Y-%m-%d", time.gmtime())
        return {
            "token_ids": [token_id, token_id.removeprefix("sk-pcl-")],
            "key_ids": [key["id"], key["id"].removeprefix("sk-pvk-")],
            "providers": ["openai", "anthropic", "claude"],
            "user_ids": [u[0] for u in users],
            "users": [u[0] for u in users] + ["alice@example.com", "bob@example.com"],
            "days": [today, "2020-01-01"],
            "group_by": ["", "day", "key,model", "user,backend", "day,key,user,backend,model"],
        }

    def credentials(self):
        """`[provider, id, label]` of every credential."""
        _, body = http("GET", self.url + "/v0/management/auths", self.key_header())
        return [[a["provider"], a["id"], a["label"]] for a in json.loads(body)["auths"]]

    def key_header(self):
        return {"authorization": "Bearer " + self.secrets["management key"]}

    def stop(self):
        for p in reversed(self.processes):
            p.stop()


def schemathesis(title, location, base_url, fixtures, extra):
    """One schemathesis run; (passed, test cases generated, {operation: statuses answered})."""
    print(f"\n== schemathesis: {title}", flush=True)
    statuses = fixtures.with_name("statuses.json")
    statuses.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PORTCULLIS_ST_FIXTURES": str(fixtures),
        "PORTCULLIS_ST_STATUSES": str(statuses),
        "SCHEMATHESIS_HOOKS": str(HERE / "hooks.py"),
    }
    args = [str(ST), "--config-file", str(HERE / "schemathesis.toml"), "--no-color", "run",
            location, "--url", base_url, *extra]
    # In the temporary directory: schemathesis and hypothesis leave their caches in the
    # working directory.
    p = subprocess.Popen(args, env=env, cwd=fixtures.parent, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, encoding="utf-8", errors="replace")
    cases = 0
    for line in p.stdout:
        print(line, end="", flush=True)
        if m := re.search(r"(\d+) generated", line):
            cases = int(m.group(1))
    ok = p.wait() == 0
    answered = json.loads(statuses.read_text()) if statuses.exists() else {}
    return ok, cases, answered


def main():
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="portcullis-st-") as tmp:
        setup = Setup(pathlib.Path(tmp))
        try:
            fixtures = setup.start()
            key = "Authorization: Bearer " + setup.secrets["management key"]
            runs = [
                ("with the management key", ["-H", key]),
                ("without a key",
                 ["--generation-with-security-parameters", "false", "--max-examples", "15",
                  "--warnings", "off"]),
                ("with made-up keys (then locked out)",
                 ["--max-examples", "15", "--warnings", "off"]),
            ]
            results = [(title, *schemathesis(title, str(setup.doc), setup.url, fixtures, extra))
                       for title, extra in runs]
            alive = setup.gateway.proc.poll() is None
        finally:
            setup.stop()
        log = "\n".join(setup.gateway.lines)
        problems = [f"schemathesis failed: {title}" for title, ok, _, _ in results if not ok]
        if not alive:
            problems.append("the gateway exited during the run")
        if "panicked" in log:
            problems.append("the gateway panicked (see its log)")
        problems += [f"the gateway's log shows the {name}" for name, value in setup.secrets.items()
                     if value in log]
    print("\n== schemathesis summary")
    codes = lambda c: " ".join(map(str, sorted(c)))  # noqa: E731
    for title, ok, cases, answered in results:
        documented = {op: c for op, c in answered.items() if op in setup.operations}
        others = {code for op, c in answered.items() if op not in setup.operations for code in c}
        print(f"{'ok  ' if ok else 'FAIL'} {title}: {len(documented)} of {len(setup.operations)}"
              f" operations, {cases} test cases; statuses answered:")
        if len({codes(c) for c in documented.values()}) == 1:
            print(f"       every operation: {codes(next(iter(documented.values())))}")
        else:
            for op, c in sorted(documented.items(), key=lambda i: i[0].split()[::-1]):
                print(f"       {op:48} {codes(c)}")
        print(f"       other methods on the same paths: {codes(others)}")
    print(f"run time {time.monotonic() - started:.0f} s")
    for p in problems:
        print("FAIL", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
