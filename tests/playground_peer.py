"""A fake browser tab for the playground's tests: a real aiortc peer on loopback and a real
WebSocket to the real server. It plays the page's part: offers to receive audio, opens the
``receiver-stats`` channel, plays the track and reports on it every 50 ms
(``ReceiverReporter``, the aiortc equivalent of the page's getStats figures), and counts the
samples it took and the non-silent ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from av import AudioFrame

from agent_playout.sinks.webrtc import ReceiverReporter

WAIT_S = 20.0


class Tab:
    """One tab: its socket's messages, its peer connection and its own counts."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http = http
        self.base_url = base_url
        self.session = ""
        self.messages: list[dict[str, Any]] = []
        self.samples = 0
        """Samples per channel taken from the track (48 kHz): the playout position."""
        self.non_silent = 0
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.channel = self.pc.createDataChannel("receiver-stats", ordered=True)
        self.reporter: ReceiverReporter | None = None
        self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.on("track", self._on_track)
        self._tasks: set[asyncio.Task[None]] = set()
        self._new_message = asyncio.Event()

    @classmethod
    @contextlib.asynccontextmanager
    async def opened(
        cls, http: aiohttp.ClientSession, base_url: str, *, connect: bool = True
    ) -> AsyncIterator[Tab]:
        tab = cls(http, base_url)
        try:
            await tab.open_socket()
            if connect:
                await tab.connect()
            yield tab
        finally:
            await tab.close()

    async def open_socket(self) -> None:
        self.ws = await self.http.ws_connect(f"{self.base_url}session")
        self._spawn(self._read())
        hello = await self.wait_for("hello")
        self.session = hello["session"]

    async def offer_sdp(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def post_offer(self, body: Any) -> tuple[int, dict[str, Any]]:
        url = f"{self.base_url}session/{self.session}/offer"
        async with self.http.post(url, data=json.dumps(body)) as response:
            return response.status, await response.json()

    async def connect(self) -> None:
        status, answer = await self.post_offer({"type": "offer", "sdp": await self.offer_sdp()})
        assert status == 200, answer
        await self.pc.setRemoteDescription(RTCSessionDescription(**answer))
        await asyncio.wait_for(self._opened(), WAIT_S)

    async def _opened(self) -> None:
        ready = asyncio.Event()

        def check() -> None:
            if self.channel.readyState == "open" and self.pc.connectionState == "connected":
                ready.set()

        self.channel.on("open", check)
        self.pc.on("connectionstatechange", check)
        check()
        await ready.wait()

    def _on_track(self, track: MediaStreamTrack) -> None:
        self.reporter = ReceiverReporter(track, self.channel, receiver=None, on_frame=self._count)
        self.reporter.start()

    def _count(self, frame: AudioFrame) -> None:
        audio = frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0]
        self.samples += frame.samples
        self.non_silent += int(np.count_nonzero(audio))

    async def _read(self) -> None:
        assert self.ws is not None
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.messages.append(json.loads(message.data))
                self._new_message.set()

    async def send(self, message: Any) -> None:
        assert self.ws is not None
        await self.ws.send_str(message if isinstance(message, str) else json.dumps(message))

    async def wait_for(self, kind: str, timeout: float = WAIT_S, **fields: Any) -> dict[str, Any]:
        """The first message of ``kind`` (with ``fields``), waiting up to ``timeout``."""

        async def found() -> dict[str, Any]:
            while True:
                for message in self.messages:
                    if message["type"] == kind and all(
                        message.get(k) == v for k, v in fields.items()
                    ):
                        return message
                self._new_message.clear()
                await self._new_message.wait()

        return await asyncio.wait_for(found(), timeout)

    async def first_caption(self, item_id: str, timeout: float = WAIT_S) -> dict[str, Any]:
        """The item's first caption with a word heard."""

        async def found() -> dict[str, Any]:
            while True:
                for caption in self.of_kind("caption", item_id=item_id):
                    if str(caption["heard"]).strip():
                        return caption
                self._new_message.clear()
                await self._new_message.wait()

        return await asyncio.wait_for(found(), timeout)

    def of_kind(self, kind: str, **fields: Any) -> list[dict[str, Any]]:
        return [
            m
            for m in self.messages
            if m["type"] == kind and all(m.get(k) == v for k, v in fields.items())
        ]

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close_socket(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def close(self) -> None:
        try:
            await self.close_socket()
            if self.reporter is not None:
                await self.reporter.aclose()
            await asyncio.wait_for(self.pc.close(), WAIT_S)
        finally:
            for task in set(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
