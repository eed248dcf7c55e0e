"""Fixtures: the real `portcullis-mock` and `portcullis` binaries on free ports.

`PORTCULLIS_BIN_DIR` names the directory with the built binaries (default: target/debug).
"""

import json
import os
import pathlib
import queue
import subprocess
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN_DIR = pathlib.Path(os.environ.get("PORTCULLIS_BIN_DIR", ROOT / "target" / "debug"))
UPSTREAM_KEY = "sk-sdk-upstream-key-0123456789"
CLIENT_KEY = "sdk-client-key-0123456789"


class Proc:
    """A child process whose output lines are collected on a thread."""

    def __init__(self, args, env, stream):
        self.proc = subprocess.Popen(
            args,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stream == "stdout" else subprocess.DEVNULL,
            stderr=subprocess.PIPE if stream == "stderr" else subprocess.DEVNULL,
            text=True,
        )
        self.lines = queue.Queue()
        pipe = self.proc.stdout if stream == "stdout" else self.proc.stderr
        threading.Thread(target=self._pump, args=(pipe,), daemon=True).start()

    def _pump(self, pipe):
        for line in pipe:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, predicate, timeout=30):
        seen = []
        while True:
            line = self.lines.get(timeout=timeout)
            if line is None:
                raise RuntimeError("process exited before the expected line:\n" + "\n".join(seen))
            seen.append(line)
            result = predicate(line)
            if result:
                return result

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
    env = clean_env(
        OPENAI_API_KEY=UPSTREAM_KEY,
        OPENAI_BASE_URL=mock_url + "/v1",
        ANTHROPIC_API_KEY=UPSTREAM_KEY,
        ANTHROPIC_BASE_URL=mock_url,
        PORTCULLIS_API_KEYS=CLIENT_KEY,
    )
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
