"""The playground end to end in headless Chromium (Debian's, driven by Playwright; no browser
download): open the page, press Speak, wait for the first caption, press Interrupt; then the
same with the space bar. The page's own stats are the ground truth: its AudioWorklet marks
where the item's sound began and ended in what the browser rendered, and its getStats
figures say how much of that span the jitter buffer made up or stretched rather than took
from the stream.

Skips with the reason when Chromium or Playwright is missing, unless
``AGENT_PLAYOUT_REQUIRE_CHROMIUM=1`` (CI sets it), which turns the skip into a failure.
``AGENT_PLAYOUT_PLAYGROUND_SCREENSHOT=PATH`` also keeps the screenshot there (the README's
``docs/playground.png`` is made so).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent_playout.tts import load_voice

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required"]
REQUIRE = "AGENT_PLAYOUT_REQUIRE_CHROMIUM"
SCREENSHOT = "AGENT_PLAYOUT_PLAYGROUND_SCREENSHOT"
RESPONSE = (
    "About four hours. There is a short stop in Providence, and the café car stays open"
    " until New Haven."
)
FRAME = 960
"""One 20 ms frame at 48 kHz: the tolerance the issue gives."""
RENDER_QUANTUM = 128
"""An AudioWorklet counts in blocks of 128 frames (48 kHz here), so the page's reading of
it, taken when a caption arrives, can be up to one block behind what was rendered."""
RENDER_CHUNK = 480
"""Chromium's WebRTC receiver hands its audio on in 10 ms blocks, and the MediaStream source
of the page's audio graph holds what the graph has not pulled yet: up to one such block
counted emitted by the jitter buffer (the position) but not yet rendered by the worklet."""


def rendered_at_caption(worklet: dict[str, Any]) -> int:
    """The worklet's frame count when the caption was shown: its last post (it posts every
    10 ms, four blocks) and the frames the audio graph rendered since."""
    since = worklet["contextFrame"] - worklet["renderedTo"]
    return int(worklet["frames"] + max(since, 0))


WAIT_MS = 20_000
PLAYED, CUT = "#1f77b4", "#d62728"

logger = logging.getLogger("agent_playout.tests")


def chromium_missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "Playwright's Python package is not installed: pip install playwright"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM}: apt-get install chromium"
    for name in ("aiohttp", "aiortc"):
        if importlib.util.find_spec(name) is None:
            return f"{name} is not installed: pip install 'agent-playout[playground]'"
    return None


@pytest.fixture
def chromium() -> Path:
    reason = chromium_missing()
    if reason is not None:
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{REQUIRE}=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return CHROMIUM


def around(reports: list[dict[str, Any]], first: int, last: int) -> tuple[dict[str, Any], ...]:
    """The page's last report before the item's sound began and its first after it ended
    (by the worklet's rendered frames): the stats that bracket the item."""
    rendered = [r for r in reports if r["worklet"] and r["inbound"]]
    before = [r for r in rendered if r["worklet"]["frames"] <= first]
    after = [r for r in rendered if r["worklet"]["frames"] > last]
    assert before, "no report before the item's sound began"
    assert after, "no report after the item's sound ended"
    return before[-1], after[0]


def not_of_the_stream(since: dict[str, Any], until: dict[str, Any]) -> int:
    """Samples the browser rendered between two reports that were not the stream's: those
    its jitter buffer made up (concealment, while a packet was late or lost) or added to
    slow down, less those it removed to catch up."""
    a, b = since["inbound"], until["inbound"]
    made_up = b["concealedSamples"] - a["concealedSamples"]
    inserted = b["insertedSamplesForDeceleration"] - a["insertedSamplesForDeceleration"]
    removed = b["removedSamplesForAcceleration"] - a["removedSamplesForAcceleration"]
    return int(made_up + inserted - removed)


def pixels_near(rgb: np.ndarray, colour: str, tolerance: float = 0.06) -> int:
    target = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    return int(np.count_nonzero(np.all(np.abs(rgb - target) < tolerance, axis=-1)))


def check_item(state: dict[str, Any], item_id: str) -> dict[str, Any]:
    """The checks of one interrupted item against the page's own stats; returns figures."""
    report = state["items"][item_id]
    heard_text = report["heard_text"].strip()
    assert heard_text
    assert RESPONSE.startswith(heard_text), heard_text
    assert report["interrupted"] is True
    assert report["position_confirmed"] is True, report
    settlement = report["settlement"]
    worklet = state["worklet"]
    first, last = worklet["first"], worklet["last"]
    assert first is not None
    assert last is not None
    since, until = around(state["reports"], first, last)
    # what the page's stats say the browser played of what was sent: all of it but the
    # packets it lost or that came too late to play, while the item's sound was rendered.
    # Concealment adds made-up sound and time-stretching changes how long the sound lasts;
    # neither takes any of the item's audio away, nor moves how far into it the listener got.
    a, b = since["inbound"], until["inbound"]
    dropped = sum(b.get(name, 0) - a.get(name, 0) for name in ("packetsLost", "packetsDiscarded"))
    browser_played = settlement["sent"] - dropped * FRAME
    heard = report["heard_samples"]
    assert abs(heard - browser_played) <= FRAME, (
        f"{item_id}: heard {heard} of {settlement['sent']} sent (charged {settlement['lost']}"
        f" lost or discarded), but the browser's stats say it dropped {dropped} packets while"
        f" it rendered the item: {a} -> {b}"
    )
    rendered = last - first + 1 - not_of_the_stream(since, until)

    captions = [c for c in state["captions"] if c["item_id"] == item_id]
    assert captions
    item_start = max(c["position"] - c["played"] for c in captions)
    leads = []
    for caption in captions:
        assert caption["word_start"] <= caption["played"]
        if caption["position"] - caption["played"] == item_start:  # live, not the cut's
            assert caption["report_seq"] <= caption["browser"]["seq"]
            shown = rendered_at_caption(caption["worklet"]) - first
            if caption["browser"]["inbound"] and shown > 0:
                shown -= not_of_the_stream(since, caption["browser"])
            leads.append(caption["word_start"] - shown)
        else:  # the cut's caption: its words were sent, so they play out
            assert caption["word_start"] <= rendered
    assert leads, "no caption while the item played"
    assert max(leads) <= FRAME + RENDER_CHUNK + RENDER_QUANTUM, leads
    return {"heard": heard, "rendered": rendered, "lead_ms": max(leads) / 48}


@pytest.mark.realtime
async def test_chromium_hears_a_cut_response_with_captions_in_step_and_its_report(
    chromium: Path, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    from agent_playout.playground import serve_playground

    voice = load_voice("auto")
    async with serve_playground(voice) as server, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium), args=FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1000})
            await page.goto(server.url)
            await page.wait_for_selector("#speak:not([disabled])", timeout=WAIT_MS)
            # the ground truth, not the page, needs this: the worklet counting, and a report,
            # before the item's sound begins
            await page.wait_for_function(
                "window.playground.reports.some(r => r.inbound && r.worklet)", timeout=WAIT_MS
            )
            await page.fill("#text", RESPONSE)
            await page.click("#speak")
            await page.wait_for_function(
                "window.playground.captions.some(c => c.heard.trim())", timeout=WAIT_MS
            )
            # the first item plays on to its fourth word, so the captions are followed over
            # a second and more (the second item is cut at its first caption)
            await page.wait_for_function(
                "window.playground.captions.some(c => c.heard.trim().split(/\\s+/).length >= 4)",
                timeout=WAIT_MS,
            )
            await page.click("#interrupt")
            await page.wait_for_function(
                "window.playground.items.item_1 !== undefined", timeout=WAIT_MS
            )
            await page.wait_for_function(
                "(() => { const p = document.getElementById('plot');"
                " return p.complete && p.naturalWidth > 0; })()",
                timeout=WAIT_MS,
            )
            await page.wait_for_timeout(400)  # the browser renders what was sent; stats settle
            state = await page.evaluate("window.playground")
            first = check_item(state, "item_1")
            caption_text = await page.inner_text("#captions .heard")
            assert caption_text.strip() == state["items"]["item_1"]["heard_text"].strip()
            shot = tmp_path / "playground.png"
            await page.screenshot(path=str(shot), full_page=True)
            box = await page.locator("#plot").bounding_box()
            assert box is not None

            await page.focus("#speak")  # the space bar must cut, not press the button again
            await page.click("#speak")
            await page.wait_for_function(
                "window.playground.captions.some(c => c.item_id === 'item_2' && c.heard.trim())",
                timeout=WAIT_MS,
            )
            await page.keyboard.press("Space")
            await page.wait_for_function(
                "window.playground.items.item_2 !== undefined", timeout=WAIT_MS
            )
            await page.wait_for_timeout(400)
            state = await page.evaluate("window.playground")
            second = check_item(state, "item_2")
            assert "item_3" not in state["items"]
            session = next(iter(server.sessions.values()))
            delays = session.sink.delays()
        finally:
            await browser.close()

    from matplotlib import image

    rgb = image.imread(str(shot))[:, :, :3]
    plot = rgb[
        int(box["y"]) : int(box["y"] + box["height"]), int(box["x"]) : int(box["x"] + box["width"])
    ]
    assert pixels_near(plot, PLAYED) > 500  # the waveform that played
    assert pixels_near(plot, CUT) > 50  # the cut
    if os.environ.get(SCREENSHOT):
        shutil.copyfile(shot, os.environ[SCREENSHOT])
    assert delays.count > 0
    logger.info(
        "Chromium sent→playout delay: median %.1f ms, max %.1f ms (%d reports);"
        " heard vs what the page's AudioWorklet rendered of the item: %d vs %d and %d vs %d;"
        " captions led the rendered audio by at most %.1f ms",
        delays.median_ms,
        delays.max_ms,
        delays.count,
        first["heard"],
        first["rendered"],
        second["heard"],
        second["rendered"],
        max(first["lead_ms"], second["lead_ms"]),
    )


@pytest.mark.realtime
async def test_chromium_tabs_each_get_a_session_and_a_closed_tab_ends_only_its_own(
    chromium: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from playwright.async_api import async_playwright

    from agent_playout.playground import serve_playground

    caplog.set_level(logging.INFO, "agent_playout")
    async with serve_playground(load_voice("auto")) as server, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium), args=FLAGS)
        try:
            tabs = [await browser.new_page() for _ in range(2)]
            for tab in tabs:
                await tab.goto(server.url)
            for tab in tabs:
                await tab.wait_for_selector("#speak:not([disabled])", timeout=WAIT_MS)
            ids = [await tab.evaluate("window.playground.session") for tab in tabs]
            assert len(set(ids)) == 2
            assert set(server.sessions) == set(ids)
            closing = server.sessions[ids[1]]
            await tabs[1].close()
            await asyncio.wait_for(closing.ended.wait(), 10)
            assert set(server.sessions) == {ids[0]}
            assert await tabs[0].inner_text("#status") == f"session {ids[0]}: ready"
        finally:
            await browser.close()
    closed = [
        r.getMessage() for r in caplog.records if f"session {ids[1]}: closed" in r.getMessage()
    ]
    assert closed == [f"session {ids[1]}: closed (the tab closed) after 0 item(s)"]
