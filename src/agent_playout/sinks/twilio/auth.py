"""Who may connect: the ``X-Twilio-Signature`` of a Media Streams WebSocket upgrade.

Twilio signs the WebSocket URL exactly as it dialled it (``wss://host/path?query``) with no POST
parameters, using the account's auth token. The check is twilio's own ``RequestValidator``; the HMAC
is not re-implemented here. The token never appears in a message, a log line or a repr.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from twilio.request_validator import RequestValidator

SIGNATURE_HEADER = "X-Twilio-Signature"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """The one value of header ``name`` in any letter case; None if absent or given twice."""
    wanted = name.lower()
    try:
        values = [value for key, value in headers.items() if key.lower() == wanted]
    except LookupError:  # websockets' Headers raise MultipleValuesError for a repeated header
        return None
    return values[0] if len(values) == 1 else None


def _base_url(public_url: str) -> str:
    """``public_url`` without a trailing "/", once it is known to be ws(s)://host[/base path]."""
    parts = urlsplit(public_url)
    if parts.scheme in ("ws", "wss") and parts.netloc and not (parts.query or parts.fragment):
        return public_url.rstrip("/")
    raise ValueError(f"public_url must be ws:// or wss://host[/base path], got {public_url[:80]!r}")


class SignatureCheck:
    """Checks that a WebSocket upgrade request was signed by Twilio with this account's token."""

    __slots__ = ("_public_url", "_validator")

    def __init__(self, auth_token: str, public_url: str | None = None) -> None:
        """``public_url`` is the scheme, host and any base path Twilio dials (e.g. behind a proxy
        that strips a prefix: ``wss://example.com/calls``); without it the request's Host is used.
        """
        if not auth_token:
            raise ValueError("the Twilio auth token is empty")
        self._public_url = None if public_url is None else _base_url(public_url)
        self._validator = RequestValidator(auth_token)

    def url_for(self, path: str, headers: Mapping[str, str]) -> str:
        """The URL Twilio signed for a request of ``path`` (which starts with "/" and includes the
        query string); safe to log."""
        if self._public_url is not None:
            return self._public_url + path
        return f"wss://{_header(headers, 'Host') or ''}{path}"

    def allows(self, path: str, headers: Mapping[str, str]) -> bool:
        """Whether the request carries exactly one valid signature for its URL."""
        signature = _header(headers, SIGNATURE_HEADER)
        if not signature:
            return False
        if self._public_url is None and not _header(headers, "Host"):
            return False
        return bool(self._validator.validate(self.url_for(path, headers), {}, signature))

    def __repr__(self) -> str:
        return f"SignatureCheck(public_url={self._public_url!r})"
