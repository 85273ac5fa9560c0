"""A fake browser tab for the playground's tests: a real aiortc peer on loopback and a real
WebSocket to the real server. It plays the page's part: offers to receive audio, opens the
``receiver-stats`` channel and reports every 50 ms what it has taken from its track (the
aiortc equivalent of the page's getStats figures), and counts the non-silent samples it got.
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
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

REPORT_INTERVAL_S = 0.05
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
        self.channel.on("message", self._on_channel_message)
        self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.on("track", self._on_track)
        self._seq = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._new_message = asyncio.Event()
        self.send_reports = True

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
        self._spawn(self._report_every_50_ms())

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
        self._spawn(self._consume(track))

    async def _consume(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                audio = frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0]
                self.samples += frame.samples
                self.non_silent += int(np.count_nonzero(audio))

    def report(self) -> dict[str, Any]:
        """What the page sends: the inbound counts as a browser names them."""
        self._seq += 1
        return {
            "type": "receiver-report",
            "seq": self._seq - 1,
            "at_ms": asyncio.get_running_loop().time() * 1000,
            "inbound": {
                "totalSamplesReceived": self.samples,
                "jitterBufferEmittedCount": self.samples,
                "concealedSamples": 0,
                "silentConcealedSamples": 0,
                "packetsLost": 0,
            },
            "playout": None,
            "worklet": None,
        }

    def send_report(self) -> None:
        if self.send_reports and self.channel.readyState == "open":
            self.channel.send(json.dumps(self.report()))

    def _on_channel_message(self, message: str) -> None:
        with contextlib.suppress(ValueError):
            if json.loads(message).get("type") == "report-now":
                self.send_report()

    async def _report_every_50_ms(self) -> None:
        while True:
            self.send_report()
            await asyncio.sleep(REPORT_INTERVAL_S)

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
            await asyncio.wait_for(self.pc.close(), WAIT_S)
        finally:
            for task in set(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
