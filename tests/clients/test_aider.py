"""aider (`aider --message … --yes`, non-interactive) through the gateway: one edit of a scratch
file through the OpenAI route, the answer scripted in aider's own edit format (`x-mock: reply=`,
sent by aider as an extra header from its model settings); a plain prompt through the Anthropic
and Gemini routes.

aider runs from its own venv (`PORTCULLIS_AIDER_VENV`, default `.venv-aider`: its exact pins
clash with the SDK venv's) with a scratch HOME whose price-list cache is seeded from the litellm
it bundles, so it fetches nothing."""

import os
import pathlib
import shutil
import urllib.parse

import pytest
from conftest import MOCK_TEXT, ROOT, Client, clean_env, python_version, run_client

VENV = pathlib.Path(os.environ.get("PORTCULLIS_AIDER_VENV", ROOT / ".venv-aider"))
AIDER = VENV / "bin" / "aider"

CLIENT = Client(
    name="aider",
    package="PyPI `aider-chat`",
    version=python_version("aider-chat", VENV / "bin" / "python"),
    base_url="`OPENAI_API_BASE=http://127.0.0.1:8080/v1`; `ANTHROPIC_BASE_URL=http://127.0.0.1:8080`; "
    "`GEMINI_API_BASE=http://127.0.0.1:8080` (or `…/v1beta`)",
    key="`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, `GEMINI_API_KEY`",
    setup="`--model openai/<model>` (or `anthropic/…`, `gemini/…`)",
)

EDIT = """hello.txt
```
<<<<<<< SEARCH
hello
=======
hello from aider through portcullis
>>>>>>> REPLACE
```
"""


def run_aider(gateway, home, work, model, *args, **env):
    if not AIDER.exists():
        pytest.skip(f"aider is not installed in {VENV} (scripts/test installs it)")
    seed = next(VENV.glob("lib/python*/site-packages/litellm/model_prices_and_context_window_backup.json"))
    caches = home / ".aider" / "caches"
    caches.mkdir(parents=True, exist_ok=True)
    shutil.copy(seed, caches / "model_prices_and_context_window.json")
    env = clean_env(HOME=str(home), LITELLM_LOCAL_MODEL_COST_MAP="True", **env)
    quiet = ["--yes", "--no-git", "--no-check-update", "--no-show-release-notes", "--no-analytics", "--no-pretty"]
    r = run_client([AIDER, "--model", model, *quiet, *args], work, env)
    assert r.returncode == 0, f"aider failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r.stdout


@pytest.mark.op("`--message` edits a file (OpenAI route, diff edit format, streamed)")
def test_edit_through_openai_route(gateway, scratch):
    home, work = scratch
    (work / "hello.txt").write_text("hello\n")
    reply = urllib.parse.quote(EDIT, safe="")
    settings = home / "model-settings.yml"
    settings.write_text(
        f"- name: openai/gpt-4o\n  edit_format: diff\n  extra_params:\n"
        f"    extra_headers:\n      x-mock: 'reply={reply}'\n"
    )
    mark = gateway.mark()
    out = run_aider(
        gateway,
        home,
        work,
        "openai/gpt-4o",
        "--model-settings-file",
        str(settings),
        "--message",
        "Add 'from aider through portcullis' to hello.txt",
        "hello.txt",
        OPENAI_API_BASE=gateway.url + "/v1",
        OPENAI_API_KEY=gateway.key,
    )
    assert "Applied edit to hello.txt" in out
    assert (work / "hello.txt").read_text() == "hello from aider through portcullis\n"
    calls = gateway.requests_since(mark, "/v1/chat/completions")
    assert [(c["path"], c["status"]) for c in calls] == [("/v1/chat/completions", 200)]


@pytest.mark.op("`--message` through the Anthropic and Gemini routes")
def test_prompt_through_anthropic_and_gemini_routes(gateway, scratch):
    home, work = scratch
    out = run_aider(
        gateway,
        home,
        work,
        "anthropic/claude-sonnet-4-5",
        "--no-stream",
        "--message",
        "Say hi",
        ANTHROPIC_BASE_URL=gateway.url,
        ANTHROPIC_API_KEY=gateway.key,
    )
    assert MOCK_TEXT in out
    out = run_aider(
        gateway,
        home,
        work,
        "gemini/gemini-2.5-flash",
        "--message",
        "Say hi",
        GEMINI_API_BASE=gateway.url,
        GEMINI_API_KEY=gateway.key,
    )
    assert MOCK_TEXT in out
