"""The options every command that talks to a realtime model shares: its URL and its headers."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import typer

from ..bridges.formats import Dialect

if TYPE_CHECKING:
    from ..bridges.connection import RealtimeConnectionError

REALTIME_EXTRA = "pip install 'agent-playout[realtime]'"

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""An HTTP header name (RFC 9110's token)."""

RealtimeUrlOption = Annotated[
    str,
    typer.Option(
        "--url",
        metavar="URL",
        help="The realtime endpoint, ws:// or wss:// (OpenAI's is"
        " wss://api.openai.com/v1/realtime?model=gpt-realtime).",
    ),
]
HeaderOption = Annotated[
    list[str] | None,
    typer.Option(
        "--header",
        metavar='"NAME: VALUE"',
        help='A header for the connection, e.g. "Authorization: Bearer $OPENAI_API_KEY";'
        " give it once per header.",
    ),
]
InstructionsOption = Annotated[
    str | None,
    typer.Option(
        metavar="TEXT",
        help="The realtime model's instructions (its system prompt), sent in session.update;"
        " the server's own otherwise.",
    ),
]


def check_realtime_url(url: str, option: str = "--url") -> str:
    """``url`` if it is a ws:// or wss:// URL with a host; a ``typer.BadParameter`` naming
    ``option`` otherwise."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (reading it checks the port)
    except ValueError as error:
        raise typer.BadParameter(f"{url!r} is not a URL ({error})", param_hint=option) from None
    if parts.scheme not in ("ws", "wss") or not host:
        raise typer.BadParameter(
            f"{url!r} must be a ws:// or wss:// URL with a host", param_hint=option
        )
    return url


_SHOWN_PARAMETERS = frozenset({"model", "deployment", "api-version", "intent"})
"""Query parameters that name the model, never a secret: shown as they are."""


def shown_url(url: str) -> str:
    """``url`` as it may be printed: the query's other values (a key may be one, as Azure's
    ``api-key=`` is) as ``...``, and no fragment, user or password."""
    parts = urlsplit(url)
    query = "&".join(
        f"{name}={value if name in _SHOWN_PARAMETERS else '...'}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, query, ""))


def shown_error(error: RealtimeConnectionError) -> str:
    """The error's message, which names its URL, with the URL as ``shown_url`` shows it."""
    return str(error).replace(error.url, shown_url(error.url))


def parse_headers(values: Sequence[str] | None, option: str = "--header") -> list[tuple[str, str]]:
    """``"Name: value"`` strings as (name, value) pairs, in order; a ``typer.BadParameter``
    naming ``option`` and the header for one without a name or a colon."""
    headers: list[tuple[str, str]] = []
    for value in values or ():
        name, colon, text = value.partition(":")
        name = name.strip()
        if not colon or not _TOKEN.fullmatch(name):
            raise typer.BadParameter(
                f'{value!r} is not "NAME: VALUE" (a name of letters, digits and'
                " !#$%&'*+-.^_`|~, a colon, the value)",
                param_hint=option,
            )
        if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in text):
            raise typer.BadParameter(
                f"the value of header {name!r} has a control character (a line break?)",
                param_hint=option,
            )
        headers.append((name, text.strip()))
    return headers


def dialect_for(headers: Sequence[tuple[str, str]]) -> Dialect:
    """``"beta"`` when the headers ask for the beta API (``OpenAI-Beta: realtime=v1``), else
    ``"ga"``: the two take ``session.update`` in different shapes."""
    for name, value in headers:
        if name.lower() == "openai-beta" and "realtime" in value.lower():
            return "beta"
    return "ga"
