"""Schemathesis hooks for the management API run (tests/schemathesis/run).

- A check, `no_secret_in_response`: no response body or header carries a secret — the
  management key, the static client key, the upstream API keys (configuration, credential file,
  store), the agent token, the virtual key, the service client's secret, the local user's
  password, the store's encryption key, a key minted during the run (shown once, in the `key`
  member of the 201 that creates it, and never again), nor a credential token the request
  itself sent — and no password hash (`$argon2…`).
- Value strategies: besides schemathesis's own values, path and query parameters and some
  bodies also take the ids, providers and users the gateway really has (from the
  fixtures file the driver writes, `PORTCULLIS_ST_FIXTURES`), so operations get past their
  404s and their handlers run on real objects.
"""

import json
import os

import schemathesis
from hypothesis import strategies as st

with open(os.environ["PORTCULLIS_ST_FIXTURES"], encoding="utf-8") as f:
    FIXTURES = json.load(f)

# Characters of a secret that, found together, count as showing it: more than a masked hint
# shows (a known prefix and at most 4 characters).
WINDOW = 12
# Secrets made or sent during the run, each with what it is ("key sk-pvk-… minted earlier").
MINTED: dict[str, str] = {}

MANAGEMENT = "/v0/management"


def secret_part(value: str) -> str:
    """The secret of an `sk-<kind>-<public id>_<secret>` value (the id is public); else all."""
    head, sep, rest = value.partition("_")
    return rest if sep and head.startswith("sk-") else value


def shown(secret: str, text: str) -> bool:
    """True when `text` holds any `WINDOW` consecutive characters of `secret`."""
    if len(secret) <= WINDOW:
        return secret in text
    return any(secret[i : i + WINDOW] in text for i in range(len(secret) - WINDOW + 1))


def request_text(case) -> str:
    """What the request itself carried (a value it sent may come back where it belongs)."""
    parts = [json.dumps(case.path_parameters), json.dumps(case.query, default=str)]
    try:
        parts.append(json.dumps(case.body, default=str))
    except (TypeError, ValueError):
        parts.append(str(case.body))
    return "\n".join(parts)


def sent_token(case) -> str | None:
    """The credential token the request sends (adding or changing a pool credential), when it
    is long and varied enough to be told apart from anything else in an answer."""
    if not case.path.startswith(MANAGEMENT + "/auths") or case.method.upper() not in ("POST", "PUT"):
        return None
    body = case.body
    token = body.get("token") if isinstance(body, dict) else None
    if isinstance(token, str) and len(token.strip()) >= 16 and len(set(token)) >= 8:
        return token.strip()
    return None


@schemathesis.check
def no_secret_in_response(ctx, response, case):
    """No response shows a secret: see the module's docstring."""
    text = response.content.decode("utf-8", errors="replace")
    created_key = None
    if (
        case.method.upper() == "POST"
        and case.path == MANAGEMENT + "/keys"
        and response.status_code == 201
    ):
        # The one answer that shows a key: only in `key`, checked without it below.
        body = json.loads(text)
        created_key = body.pop("key")
        text = json.dumps(body)
    headers = "\n".join(f"{k}: {v}" for k, values in response.headers.items() for v in values)
    answer = text + "\n" + headers
    leaks = [name for name, value in FIXTURES["secrets"].items() if shown(secret_part(value), answer)]
    sent = request_text(case)
    leaks += [
        name
        for value, name in MINTED.items()
        if shown(secret_part(value), answer) and not shown(secret_part(value), sent)
    ]
    token = sent_token(case)
    if token is not None and shown(token, answer):
        leaks.append("the credential token this request sent")
    if created_key is not None and shown(secret_part(created_key), answer):
        leaks.append("the key it creates, outside `key`")
    if "$argon2" in answer:
        leaks.append("a password hash")
    if created_key is not None:
        MINTED[created_key] = f"key {created_key.partition('_')[0]} minted earlier"
    if token is not None and response.status_code in (200, 201):
        MINTED[token] = f"a credential token stored by an earlier {case.method.upper()} {case.path}"
    if leaks:
        raise AssertionError("the response shows " + ", ".join(sorted(set(leaks))))


# Status codes each operation answered, written at the end of the run for the driver's summary.
STATUSES: dict[str, set[int]] = {}


@schemathesis.check
class statuses_seen:
    """Records the status codes each operation answered (never fails)."""

    def after_response(self, ctx, response, case):
        STATUSES.setdefault(f"{case.method.upper()} {case.path}", set()).add(response.status_code)

    def after_run(self, ctx):
        path = os.environ.get("PORTCULLIS_ST_STATUSES")
        if path:
            with open(path, "w", encoding="utf-8") as f:
                json.dump({op: sorted(codes) for op, codes in STATUSES.items()}, f)


def with_member(strategy, name, values):
    """`strategy`'s dicts, or the same with `name` set to one of `values`."""
    if not values:
        return strategy
    real = st.tuples(strategy, st.sampled_from(values)).map(
        lambda t: {**t[0], name: t[1]} if isinstance(t[0], dict) else t[0]
    )
    return st.one_of(strategy, real)


@schemathesis.hook
def before_generate_path_parameters(context, strategy):
    path = context.operation.path
    if path.startswith(MANAGEMENT + "/tokens/"):
        return with_member(strategy, "id", FIXTURES["token_ids"])
    if path.startswith(MANAGEMENT + "/keys/"):
        return with_member(strategy, "id", FIXTURES["key_ids"])
    if "{provider}" in path:
        return with_member(strategy, "provider", FIXTURES["providers"])
    return strategy


# Query members that name real things, by operation path.
QUERY_VALUES = {
    MANAGEMENT + "/tokens": [("user", "users")],
    MANAGEMENT + "/keys": [("owner", "user_ids")],
    MANAGEMENT + "/usage": [
        ("key", "key_ids"),
        ("user", "user_ids"),
        ("backend", "providers"),
        ("since", "days"),
        ("until", "days"),
        ("group_by", "group_by"),
    ],
}


@schemathesis.hook
def before_generate_query(context, strategy):
    for name, fixture in QUERY_VALUES.get(context.operation.path, []):
        strategy = with_member(strategy, name, FIXTURES[fixture])
    return strategy


@schemathesis.hook
def before_generate_case(context, strategy):
    """Credential operations also name a real credential: its provider and its id (deletions
    their own credentials, so that the other operations keep theirs)."""
    if "{provider}" not in context.operation.path:
        return strategy
    deleting = context.operation.method.upper() == "DELETE"
    pairs = FIXTURES["deletable" if deleting else "credentials"]

    def named(pair):
        case, (provider, id_) = pair
        case.path_parameters = {**(case.path_parameters or {}), "provider": provider}
        case.query = {**(case.query or {}), "id": id_}
        return case

    real = st.tuples(strategy, st.sampled_from(pairs)).map(named)
    return st.one_of(strategy, real)


@schemathesis.hook
def before_generate_body(context, strategy):
    """Credential tokens worth looking for in answers, real providers and owners, and each
    member's documented maximum (a sum of several may overflow, a time that far ahead may not
    print)."""
    operation = f"{context.operation.method.upper()} {context.operation.path}"
    if operation in (f"POST {MANAGEMENT}/auths", f"PUT {MANAGEMENT}/auths/{{provider}}"):
        strategy = with_member(strategy, "token", FIXTURES["new_tokens"])
    if operation == f"POST {MANAGEMENT}/auths":
        strategy = with_member(strategy, "provider", FIXTURES["providers"])
    if operation == f"POST {MANAGEMENT}/keys":
        strategy = with_member(strategy, "owner", FIXTURES["user_ids"])
    for name, values in FIXTURES["maxima"].get(operation, {}).items():
        strategy = with_member(strategy, name, values)
    return strategy
