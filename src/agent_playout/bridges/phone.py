"""A phone call bridged to a realtime model: the caller's voice up, the model's voice down.

Both directions stay in the phone's own 8 kHz G.711 mu-law, so nothing is resampled and the
model's ``audio_end_ms`` counts 8 samples per ms. The model's audio plays through an
``AgentPlayout`` into the call's ``PhoneSink``: on the model's ``speech_started`` the bridge
interrupts it, the sink writes Twilio's ``clear`` in that same turn, and the truncation is
the position the caller's phone confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import numpy as np

from ..core.frames import Int16Array
from ..engine.playout import AgentPlayout
from .bridge import RealtimeBridge
from .formats import AudioFormat, Dialect, encode_audio, session_update
from .heard import ItemHeard

if TYPE_CHECKING:
    from ..sinks.twilio import PhoneCall
    from .connection import RealtimeConnection

__all__ = ["MAX_APPEND_SAMPLES", "bridge_phone_call"]

logger = logging.getLogger("agent_playout")

PHONE_FORMAT = AudioFormat.G711_ULAW

ABNORMAL_CLOSURE = 1006
"""The close code of a WebSocket that closed without a close frame (a dropped connection)."""

MAX_APPEND_SAMPLES = PHONE_FORMAT.sample_rate // 10
"""The most caller audio one ``input_audio_buffer.append`` carries (100 ms). Each 20 ms frame
goes up as soon as it arrives; only frames that piled up while a send waited go together."""


async def bridge_phone_call(
    call: PhoneCall,
    connection: RealtimeConnection,
    *,
    dialect: Dialect = "ga",
    instructions: str | None = None,
    greet: bool = True,
    false_interruption_timeout: float | None = None,
    on_item_ended: Callable[[ItemHeard], None] | None = None,
) -> None:
    """Bridge ``call`` to the model on ``connection`` until either side ends.

    Asks for G.711 mu-law both ways (``session.update`` in the ``dialect``'s shape, with the
    ``instructions``), then a first response if ``greet``. Returns when the call ends (the
    model connection is then closed) or the model's connection closes (the call is then hung
    up with 1000, the reason naming the model). Everything is released on every path,
    cancellation included; a failure of either side is one log line, never raised.
    ``on_item_ended`` gets what the caller heard of each item the model spoke.
    ``false_interruption_timeout`` is the bridge's; a ``PhoneSink`` cannot pause (Twilio
    has no pause), so with it a barge-in still interrupts at once, as the bridge logs.
    """
    sid = call.call_sid
    if call.ended:  # nobody would hear a response: ask for none
        await _release(sid, "the realtime connection", connection.aclose())
        return
    playout = AgentPlayout(audio_source=call.sink)
    bridge = RealtimeBridge(
        playout,
        connection.send,
        output_format=PHONE_FORMAT,
        false_interruption_timeout=false_interruption_timeout,
    )
    if on_item_ended is not None:
        bridge.on("item_ended", on_item_ended)
    tasks: list[asyncio.Task[None]] = []
    hang_up_reason = "the bridge to the realtime model was stopped"
    try:
        await connection.send(
            session_update(
                dialect=dialect,
                output_format=PHONE_FORMAT,
                input_format=PHONE_FORMAT,
                instructions=instructions,
            )
        )
        if greet:
            await connection.send({"type": "response.create"})
        model = asyncio.create_task(bridge.run(connection), name=f"realtime model {sid}")
        tasks = [
            model,
            asyncio.create_task(_send_caller_audio(call, connection), name=f"caller audio {sid}"),
        ]
        ended = asyncio.ensure_future(call.wait_ended())
        try:
            await asyncio.wait([model, ended], return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
        if not call.ended:
            model.result()  # the model's side failed: raise it, to be logged below
            hang_up_reason = _model_gone(connection)
    except Exception as error:  # one line for whatever failed, then hang up
        logger.error("call %s: the realtime bridge failed: %s", sid, _described(error))
        hang_up_reason = f"the realtime bridge failed: {_described(error)}"
    finally:
        releasing = asyncio.ensure_future(
            _release_all(call, bridge, connection, playout, tasks, hang_up_reason)
        )
        try:
            await asyncio.shield(releasing)
        except asyncio.CancelledError:
            await releasing  # cancelled while releasing: release all the same, then end
            raise


async def _send_caller_audio(call: PhoneCall, connection: RealtimeConnection) -> None:
    """The caller's voice as ``input_audio_buffer.append`` events, until the call ends.

    One task reads the call's frames, this one sends them: a send that waits (a slow link
    to the model) lets the frames pile up, and they go up together, up to 100 ms a message,
    rather than one message per 20 ms behind a growing queue.
    """
    frames: asyncio.Queue[Int16Array | None] = asyncio.Queue()
    reader = asyncio.create_task(_read_frames(call, frames), name=f"caller frames {call.call_sid}")
    try:
        while (first := await frames.get()) is not None:
            batch, size = [first], first.size
            while size < MAX_APPEND_SAMPLES and not frames.empty():
                more = frames.get_nowait()
                if more is None:
                    frames.put_nowait(None)
                    break
                batch.append(more)
                size += more.size
            audio = encode_audio(np.concatenate(batch), PHONE_FORMAT)
            await connection.send({"type": "input_audio_buffer.append", "audio": audio})
    except Exception as error:  # the model's side ends the bridge, saying why
        if connection.close_code is None:
            logger.warning(
                "call %s: the caller's audio cannot reach the model: %s",
                call.call_sid,
                _described(error),
            )
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def _read_frames(call: PhoneCall, frames: asyncio.Queue[Int16Array | None]) -> None:
    try:
        async for frame in call.inbound_audio():
            frames.put_nowait(frame.array)
    finally:
        frames.put_nowait(None)


def _model_gone(connection: RealtimeConnection) -> str:
    """Why the call is hung up when the model's side ended, with its close code."""
    code, reason = connection.close_code, connection.close_reason
    if code is None:
        return "the realtime model's connection ended"
    if code == ABNORMAL_CLOSURE:
        return "the connection to the realtime model dropped (no close frame)"
    detail = f": {reason}" if reason else ""
    return f"the realtime model closed the connection (code {code}{detail})"


def _described(error: BaseException) -> str:
    """The error's message; a connection error's without its URL, whose query may carry a
    key (each line and hang-up reason already says it is the realtime model's)."""
    from .connection import RealtimeConnectionError

    if isinstance(error, RealtimeConnectionError):
        return str(error).removeprefix(f"{error.url}: ")
    return str(error) or type(error).__name__


async def _release_all(
    call: PhoneCall,
    bridge: RealtimeBridge,
    connection: RealtimeConnection,
    playout: AgentPlayout,
    tasks: list[asyncio.Task[None]],
    hang_up_reason: str,
) -> None:
    """Close the bridge (its last truncation goes out), then the model's connection, the
    caller's audio and the playout; hang up if the call is still live."""
    sid = call.call_sid
    await _release(sid, "the bridge", bridge.aclose())
    await _release(sid, "the realtime connection", connection.aclose())
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await _release(sid, "the playout", playout.aclose())
    if not call.ended:
        await _release(sid, "the call", call.hang_up(hang_up_reason))


async def _release(sid: str, what: str, closing: Awaitable[object]) -> None:
    """Await one release step; a failure is logged, so that the next steps still run."""
    try:
        await closing
    except Exception as error:  # release the rest whatever this one did
        logger.warning("call %s: closing %s failed: %s", sid, what, _described(error))
