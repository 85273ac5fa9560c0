"""The playground's aiohttp server: the page, one session per tab, the offer, the plots.

As aiortc's own server example does, the page posts its SDP offer over HTTP and gets the
answer back; unlike it, each tab first opens a WebSocket, which creates the tab's session
and carries what is said and heard. The socket's end is the tab's end: it closes that
session, and only that one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import WSMsgType, web

from ..tts import Voice
from .messages import MessageError, parse_offer
from .realtime import RealtimeTarget
from .session import OfferError, Session
from .voice import SharedVoice

logger = logging.getLogger("agent_playout")

STATIC = Path(__file__).parent / "static"
RESPONSES = (
    "At 6:40. It leaves from platform three, and it is on time.",
    "About four hours. There is a short stop in Providence, and the café car stays open"
    " until New Haven.",
    "Your table for four is booked for eight o'clock tonight. Would you like me to send"
    " the confirmation to your phone?",
)
"""The canned responses the page offers beside its text box."""
PROMPTS = (
    "Greet the caller in one short sentence.",
    "Say when the next train to Boston leaves, in two sentences.",
    "Tell a long story about a lighthouse keeper.",
)
"""With ``--realtime``, the canned instructions for the model's next response."""
HEARTBEAT_S = 10.0
"""WebSocket pings: a tab that vanishes without closing (a crash, a laptop lid) is found
within two of them."""
MAX_MESSAGE_BYTES = 64 * 1024
SHUTDOWN_TIMEOUT_S = 10.0
"""How long a stop waits for the tabs' sessions to close (each is bounded by the session's
own ``CLOSE_TIMEOUT_S`` steps) before aiohttp cancels what is left."""

_SESSIONS = web.AppKey("sessions", dict[str, Session])
_SOCKETS = web.AppKey("sockets", set[web.WebSocketResponse])
_VOICE: web.AppKey[SharedVoice | None] = web.AppKey("voice")
_REALTIME: web.AppKey[RealtimeTarget | None] = web.AppKey("realtime")
_STOPPING = web.AppKey("stopping", asyncio.Event)


def create_app(voice: Voice | None, *, realtime: RealtimeTarget | None = None) -> web.Application:
    """The playground's application, speaking with ``voice`` (shared by every tab) or, with
    ``realtime``, giving each tab a connection of its own to that model."""
    if (voice is None) == (realtime is None):
        raise ValueError("the playground speaks with a voice or a realtime model: give one")
    app = web.Application(client_max_size=MAX_MESSAGE_BYTES)
    app[_VOICE] = None if voice is None else SharedVoice(voice)
    app[_REALTIME] = realtime
    app[_SESSIONS] = {}
    app[_SOCKETS] = set()
    app[_STOPPING] = asyncio.Event()
    numbers = itertools.count(1)

    async def page(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_MESSAGE_BYTES)
        await ws.prepare(request)
        session_id = f"s{next(numbers)}"
        session = Session(session_id, ws.send_json, voice=app[_VOICE], realtime=app[_REALTIME])
        app[_SESSIONS][session_id] = session
        app[_SOCKETS].add(ws)
        reason = "the tab closed"
        ended = asyncio.create_task(_close_when_ended(session, ws))
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "session": session_id,
                    "mode": "voice" if app[_REALTIME] is None else "realtime",
                    "responses": list(RESPONSES if app[_REALTIME] is None else PROMPTS),
                }
            )
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    session.on_page_message(message.data)
                elif message.type == WSMsgType.BINARY:
                    logger.warning(
                        "session %s: ignored a binary message from the page (%d bytes)",
                        session_id,
                        len(message.data),
                    )
                elif message.type == WSMsgType.ERROR:
                    reason = f"the page's socket failed: {ws.exception()}"
        finally:
            ended.cancel()
            await asyncio.gather(ended, return_exceptions=True)
            if session.closed:
                reason = "its peer connection ended"
            elif app[_STOPPING].is_set():
                reason = "the playground stopped"
            app[_SOCKETS].discard(ws)
            del app[_SESSIONS][session_id]
            await session.aclose(reason)
            await ws.close()
        return ws

    async def offer(request: web.Request) -> web.Response:
        session_id = request.match_info["session"]
        session = app[_SESSIONS].get(session_id)
        if session is None:
            return _refuse(404, f"no session {session_id!r}: open the page's socket first")
        try:
            answer = await session.answer(parse_offer(await request.read()))
        except (MessageError, OfferError) as error:
            logger.warning("session %s: refused the page's offer: %s", session_id, error)
            return _refuse(400, str(error))
        return web.json_response({"type": answer.type, "sdp": answer.sdp})

    async def plot(request: web.Request) -> web.Response:
        session = app[_SESSIONS].get(request.match_info["session"])
        png = None if session is None else session.plots.get(request.match_info["item"])
        if png is None:
            return _refuse(404, "no such plot (plots are kept while their tab is open)")
        return web.Response(body=png, content_type="image/png")

    async def close_sockets(app: web.Application) -> None:
        """Server stopping: each tab's socket closes (1001), which ends its session."""
        app[_STOPPING].set()
        sockets = app[_SOCKETS]
        await asyncio.gather(
            *(ws.close(code=1001, message=b"the playground is stopping") for ws in list(sockets))
        )

    app.router.add_get("/", page)
    app.router.add_get("/session", socket)
    app.router.add_post("/session/{session}/offer", offer)
    app.router.add_get("/session/{session}/plot/{item}.png", plot)
    app.router.add_static("/static/", STATIC)
    app.on_shutdown.append(close_sockets)
    return app


async def _close_when_ended(session: Session, ws: web.WebSocketResponse) -> None:
    """A session that ended by itself (its peer connection failed) closes its tab's socket."""
    await session.ended.wait()
    await ws.close(code=1011, message=b"the session ended")


def _refuse(status: int, message: str) -> web.Response:
    return web.Response(
        status=status, text=json.dumps({"error": message}), content_type="application/json"
    )


class PlaygroundServer:
    """The playground on ``host:port`` (0: a free port): ``start()``, then ``aclose()``,
    which closes every tab's session."""

    def __init__(
        self,
        voice: Voice | None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        realtime: RealtimeTarget | None = None,
    ) -> None:
        self._app = create_app(voice, realtime=realtime)
        self._runner = web.AppRunner(
            self._app, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_S
        )
        self._host = host
        self._port = port
        self.url = ""
        """``http://HOST:PORT/``, once started."""

    async def start(self) -> None:
        """Listen; ``OSError`` if the port cannot be bound (nothing is left running)."""
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self._host, self._port).start()
        except BaseException:
            await self._runner.cleanup()
            raise
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/"

    async def aclose(self) -> None:
        """Stop listening and close every session (each tab's socket closes with 1001)."""
        await self._runner.cleanup()

    @property
    def sessions(self) -> dict[str, Session]:
        """The live sessions by id (one per open tab)."""
        return self._app[_SESSIONS]


@contextlib.asynccontextmanager
async def serve_playground(
    voice: Voice | None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    realtime: RealtimeTarget | None = None,
) -> AsyncIterator[PlaygroundServer]:
    """Serve the playground until the block ends; then every tab's session is closed.
    ``voice`` speaks the page's text; or give None and ``realtime``, and each tab talks to
    that model. ``OSError`` if the port cannot be bound."""
    server = PlaygroundServer(voice, host=host, port=port, realtime=realtime)
    await server.start()
    try:
        yield server
    finally:
        await server.aclose()
