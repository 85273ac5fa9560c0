"""Who may connect: a Media Streams upgrade signed by Twilio with the account's auth token."""

from __future__ import annotations

import pytest
from twilio.request_validator import RequestValidator
from websockets.datastructures import Headers

from agent_playout.sinks.twilio.auth import SignatureCheck

TOKEN = "12345678901234567890123456789012"
HOST = "agent.example.com"
PATH = "/media?caller=%2B15550100"


def signed(url: str, token: str = TOKEN) -> str:
    signature: str = RequestValidator(token).compute_signature(url, {})
    return signature


def headers_for(url: str, host: str = HOST) -> dict[str, str]:
    return {"Host": host, "X-Twilio-Signature": signed(url)}


def test_a_signature_for_the_dialled_url_is_allowed() -> None:
    check = SignatureCheck(TOKEN)

    assert check.allows(PATH, headers_for(f"wss://{HOST}{PATH}"))


def test_a_request_without_a_signature_is_refused() -> None:
    assert not SignatureCheck(TOKEN).allows(PATH, {"Host": HOST})


def test_an_empty_signature_is_refused() -> None:
    assert not SignatureCheck(TOKEN).allows(PATH, {"Host": HOST, "X-Twilio-Signature": ""})


def test_a_signature_made_with_another_token_is_refused() -> None:
    headers = {"Host": HOST, "X-Twilio-Signature": signed(f"wss://{HOST}{PATH}", token="x" * 32)}

    assert not SignatureCheck(TOKEN).allows(PATH, headers)


def test_a_garbled_signature_is_refused() -> None:
    headers = headers_for(f"wss://{HOST}{PATH}")
    headers["X-Twilio-Signature"] = headers["X-Twilio-Signature"][::-1]

    assert not SignatureCheck(TOKEN).allows(PATH, headers)


def test_a_signature_for_another_path_or_query_is_refused() -> None:
    headers = headers_for(f"wss://{HOST}/media")
    check = SignatureCheck(TOKEN)

    assert check.allows("/media", headers)
    assert not check.allows("/admin", headers)
    assert not check.allows("/media?caller=someone", headers)


def test_a_signature_for_another_host_is_refused() -> None:
    headers = headers_for(f"wss://{HOST}{PATH}", host="attacker.example.net")

    assert not SignatureCheck(TOKEN).allows(PATH, headers)


def test_without_a_host_header_nothing_is_allowed() -> None:
    assert not SignatureCheck(TOKEN).allows(PATH, {"X-Twilio-Signature": signed(f"wss://{PATH}")})


def test_a_public_url_with_a_base_path_is_what_twilio_signed() -> None:
    public = "wss://calls.example.com/agent/"
    headers = {"Host": "127.0.0.1:8765", "X-Twilio-Signature": signed(f"{public[:-1]}{PATH}")}
    check = SignatureCheck(TOKEN, public_url=public)

    assert check.url_for(PATH, headers) == f"wss://calls.example.com/agent{PATH}"
    assert check.allows(PATH, headers)
    assert not SignatureCheck(TOKEN).allows(PATH, headers)


def test_header_names_match_in_any_case_in_a_plain_dict() -> None:
    url = f"wss://{HOST}{PATH}"
    headers = {"host": HOST, "x-twilio-signature": signed(url)}

    assert SignatureCheck(TOKEN).allows(PATH, headers)
    assert SignatureCheck(TOKEN).url_for(PATH, {"HOST": HOST}) == url


def test_websockets_headers_are_accepted() -> None:
    url = f"wss://{HOST}{PATH}"
    headers = Headers(host=HOST)
    headers["x-TWILIO-signature"] = signed(url)

    assert SignatureCheck(TOKEN).allows(PATH, headers)


def test_a_signature_header_given_twice_is_refused() -> None:
    signature = signed(f"wss://{HOST}{PATH}")
    headers = Headers(host=HOST)
    headers["X-Twilio-Signature"] = signature
    headers["X-Twilio-Signature"] = signature

    assert not SignatureCheck(TOKEN).allows(PATH, headers)
    assert not SignatureCheck(TOKEN).allows(
        PATH, {"Host": HOST, "X-Twilio-Signature": signature, "x-twilio-signature": signature}
    )


def test_the_token_is_in_neither_the_repr_nor_the_url() -> None:
    check = SignatureCheck(TOKEN, public_url="wss://calls.example.com")

    assert TOKEN not in repr(check)
    assert TOKEN not in check.url_for(PATH, {"Host": HOST})


@pytest.mark.parametrize(
    "public_url",
    ["https://calls.example.com", "calls.example.com", "wss://", "wss://h.example.com/?q=1"],
)
def test_a_public_url_that_is_not_a_websocket_base_is_refused_naming_it(public_url: str) -> None:
    with pytest.raises(ValueError, match="public_url must be ws:// or wss://") as raised:
        SignatureCheck(TOKEN, public_url=public_url)

    assert repr(public_url) in str(raised.value)
    assert TOKEN not in str(raised.value)


def test_an_empty_token_is_refused() -> None:
    with pytest.raises(ValueError, match="auth token is empty"):
        SignatureCheck("")
