"""`studiolo serve`'s HTTP layer in this process: the real app and middleware (the model list needs no engine),
driven through Starlette's test client, with an injected clock for the rate limit; and the API key's file."""

from __future__ import annotations

import stat

import pytest
from starlette.testclient import TestClient

from desktop.api import StudioloError
from desktop.serve.app import Limits, create_app
from desktop.serve.auth import choose_key, is_loopback, key_path, stored_key
from desktop.serve.handling import Services


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def services():
    from desktop.plugins import PluginManager

    return Services(PluginManager().load())


def test_each_client_gets_its_rate_a_minute_then_429_until_a_token_comes_back(services):
    clock = Clock()
    app = create_app(services, Limits(rate_per_minute=2, clock=clock))
    one, other = TestClient(app, client=("10.0.0.1", 5000)), TestClient(app, client=("10.0.0.2", 5000))
    assert [one.get("/v1/models").status_code for _ in range(2)] == [200, 200]
    refused = one.get("/v1/models")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "30"
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert other.get("/v1/models").status_code == 200  # its own bucket
    clock.now += 29.0
    assert one.get("/v1/models").status_code == 429
    clock.now += 1.0
    assert one.get("/v1/models").status_code == 200
    assert one.get("/v1/models").status_code == 429


def test_no_limit_with_rate_0(services):
    client = TestClient(create_app(services, Limits(rate_per_minute=0, clock=Clock())))
    assert {client.get("/v1/models").status_code for _ in range(5)} == {200}


def test_a_required_key_is_checked_on_every_request(services):
    key = "k" * 24
    client = TestClient(create_app(services, Limits(key=key)))
    missing = client.get("/v1/models")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"]["type"] == "authentication_error"
    assert client.get("/v1/models", headers={"Authorization": "Bearer " + "k" * 23}).status_code == 401
    assert client.get("/v1/no-such", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_errors_of_starlette_itself_are_openai_shaped(services):
    client = TestClient(create_app(services))
    unknown = client.get("/v1/nothing")
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found_error"
    wrong = client.get("/v1/chat/completions")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    assert client.post("/v1/chat/completions", json={"model": "text.transformers/demo", "messages": [
        {"role": "user", "content": "hi"}]}).status_code == 503  # no engine here: refused after the checks


def test_the_key_file_is_made_once_private_and_made_private_again(studiolo_home):
    made = stored_key()
    assert made.created and made.path == key_path() and made.value.startswith("sk-studiolo-")
    assert stat.S_IMODE(key_path().stat().st_mode) == 0o600
    again = stored_key()
    assert again.value == made.value and not again.created
    key_path().chmod(0o644)
    assert stored_key().value == made.value and stat.S_IMODE(key_path().stat().st_mode) == 0o600


def test_a_key_is_required_off_loopback_and_when_asked_for(studiolo_home, monkeypatch):
    monkeypatch.delenv("STUDIOLO_API_KEY", raising=False)
    assert choose_key("127.0.0.1", None, False) is None and choose_key("::1", None, False) is None
    assert choose_key("localhost", None, True).path == key_path()
    assert choose_key("0.0.0.0", None, False).path == key_path()
    assert choose_key("127.0.0.1", "given-key-of-some-length", False).source == "--api-key"
    monkeypatch.setenv("STUDIOLO_API_KEY", "from-the-environment-1")
    assert choose_key("127.0.0.1", None, False).value == "from-the-environment-1"
    with pytest.raises(StudioloError, match="at least 16"):
        choose_key("0.0.0.0", "short", False)
    assert not is_loopback("example.org") and is_loopback("[::1]") and not is_loopback("10.0.0.1")


@pytest.mark.parametrize("messages, expected", [
    ([{"role": "user", "content": "a"}], ("", [], "a")),
    ([{"role": "system", "content": "s1"}, {"role": "developer", "content": "s2"}, {"role": "user", "content": "a"},
      {"role": "assistant", "content": "b"}, {"role": "user", "content": [{"type": "text", "text": "c"}]}],
     ("s1\n\ns2", ["a", "b"], "c")),
    ([{"role": "assistant", "content": "hello"}, {"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
     ("", ["", "hello"], "a\n\nb")),
])
def test_openai_messages_become_system_prompt_history_and_prompt(messages, expected):
    from desktop.serve.mapping import chat_turns

    assert chat_turns(messages) == expected
