"""The realtime commands' shared options: the URL, the headers, and the dialect they imply."""

from __future__ import annotations

import pytest
import typer

from agent_playout.cli.realtime_options import (
    check_realtime_url,
    dialect_for,
    parse_headers,
    shown_url,
)


@pytest.mark.parametrize(
    "url", ["ws://127.0.0.1:8080/v1/realtime", "wss://api.openai.com/v1/realtime?model=x"]
)
def test_websocket_urls_are_taken_as_given(url: str) -> None:
    assert check_realtime_url(url) == url


@pytest.mark.parametrize(
    "url", ["http://example.com", "ws://", "api.openai.com", "ws://host:99999", ""]
)
def test_other_urls_are_refused_naming_the_option(url: str) -> None:
    with pytest.raises(typer.BadParameter) as caught:
        check_realtime_url(url, "--realtime")
    assert caught.value.param_hint == "--realtime"


def test_headers_keep_their_order_and_lose_the_spaces_around_the_value() -> None:
    assert parse_headers(["Authorization:  Bearer sk-1 ", "OpenAI-Beta:realtime=v1"]) == [
        ("Authorization", "Bearer sk-1"),
        ("OpenAI-Beta", "realtime=v1"),
    ]
    assert parse_headers(None) == []


@pytest.mark.parametrize(
    "value",
    ["Authorization Bearer x", ": x", "Bad Name: x", "A: b\r\nC: d", "Bad(name): v", "A: b\x00"],
)
def test_a_malformed_header_is_refused_and_named(value: str) -> None:
    with pytest.raises(typer.BadParameter) as caught:
        parse_headers([value])
    assert caught.value.param_hint == "--header"


def test_the_beta_header_selects_the_beta_dialect() -> None:
    assert dialect_for([("openai-beta", "realtime=v1")]) == "beta"
    assert dialect_for([("Authorization", "Bearer x")]) == "ga"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "wss://api.openai.com/v1/realtime?model=gpt-realtime",
            "wss://api.openai.com/v1/realtime?model=gpt-realtime",
        ),
        (
            "wss://me:secret@x.openai.azure.com/openai/realtime?api-version=2025&api-key=sk-1",
            "wss://x.openai.azure.com/openai/realtime?api-version=2025&api-key=...",
        ),
        ("ws://127.0.0.1:8765/v1/realtime#frag", "ws://127.0.0.1:8765/v1/realtime"),
    ],
)
def test_a_shown_url_keeps_the_model_and_hides_keys_and_users(url: str, shown: str) -> None:
    assert shown_url(url) == shown
