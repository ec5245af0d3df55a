"""The chat page in a real browser: headless Chromium driven by Playwright.

Needs the ``browser`` extra (``pip install -e .[browser]``) and a system Chromium
(Debian: ``apt-get install chromium``); Playwright's own browser download is not
used. Skipped, saying which is missing, when either is absent.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import ergopy
from ergopy.examples.chat import Chat, ChatOptions, start_chat

playwright_api = pytest.importorskip("playwright.async_api", reason="Playwright is missing: pip install -e .[browser]")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)"),
    pytest.mark.timeout(90),
]
expect = playwright_api.expect
TIMEOUT_MS = 10_000


@pytest.fixture
async def chat(node: ergopy.Node) -> Chat:
    return await start_chat(node, ChatOptions(host="127.0.0.1", port=0, workers=2))


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"])
        try:
            yield b
        finally:
            await b.close()


async def open_and_join(browser: Any, url: str, nick: str, room: str) -> Any:
    page = await browser.new_page(viewport={"width": 720, "height": 520})
    await page.goto(url)
    await expect(page.locator("#status")).to_have_text("connected", timeout=TIMEOUT_MS)
    await page.fill("#nick", nick)
    await page.fill("#room", room)
    await page.click("#join")
    await expect(page.locator("#room-name")).to_have_text(f"room: {room}", timeout=TIMEOUT_MS)
    return page


async def test_two_pages_chat_and_see_each_other_leave(chat: Chat, browser: Any, tmp_path: Path) -> None:
    alice = await open_and_join(browser, chat.url, "alice", "garden")
    await expect(alice.locator("#count")).to_have_text("1 user online", timeout=TIMEOUT_MS)
    bob = await open_and_join(browser, chat.url, "bob", "garden")
    await expect(bob.locator("#count")).to_have_text("2 users online", timeout=TIMEOUT_MS)
    await expect(alice.locator("#count")).to_have_text("2 users online", timeout=TIMEOUT_MS)
    await expect(alice.locator("#messages li.presence").last).to_have_text("bob joined (2 online)")

    await bob.fill("#text", "hello from bob")
    await bob.press("#text", "Enter")
    line = alice.locator("#messages li.message").last
    await expect(line.locator(".nick")).to_have_text("bob", timeout=TIMEOUT_MS)
    await expect(line.locator(".text")).to_have_text("hello from bob")
    await expect(bob.locator("#messages li.message .text").last).to_have_text("hello from bob")

    await alice.fill("#text", "hi bob <b>not bold</b>")
    await alice.click("#send")
    echoed = bob.locator("#messages li.message .text").last
    await expect(echoed).to_have_text("hi bob <b>not bold</b>", timeout=TIMEOUT_MS)  # text, never markup

    await bob.close()
    await expect(alice.locator("#messages li.presence").last).to_have_text("bob left (1 online)", timeout=TIMEOUT_MS)
    await expect(alice.locator("#count")).to_have_text("1 user online")
    shot = tmp_path / "chat.png"
    await alice.screenshot(path=str(shot))
    assert shot.stat().st_size > 0
    print(f"screenshot: {shot}")


async def test_the_page_shows_server_errors_and_the_close_on_stop(node: ergopy.Node, chat: Chat, browser: Any) -> None:
    alice = await open_and_join(browser, chat.url, "alice", "lobby")
    other = await browser.new_page()
    await other.goto(chat.url)
    await expect(other.locator("#status")).to_have_text("connected", timeout=TIMEOUT_MS)
    await other.fill("#nick", "Alice")
    await other.click("#join")
    await expect(other.locator("#messages li.error")).to_contain_text("is taken", timeout=TIMEOUT_MS)
    await node.stop()
    await expect(alice.locator("#status")).to_contain_text("disconnected (1001", timeout=TIMEOUT_MS)
