"""The chat page in a real browser: headless Chromium driven by Playwright.

Needs the ``browser`` extra (``pip install -e .[browser]``) and a system Chromium
(Debian: ``apt-get install chromium``); Playwright's own browser download is not
used. Skipped, saying which is missing, when either is absent. Screenshots go to
``reports/screenshots/`` (git-ignored) for a person to look at.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import ergopy
from ergopy import gen
from ergopy.examples.chat import Chat, ChatOptions, start_chat

playwright_api = pytest.importorskip("playwright.async_api", reason="Playwright is missing: pip install -e .[browser]")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)"),
    pytest.mark.timeout(90),
]
expect = playwright_api.expect
TIMEOUT_MS = 10_000
SCREENSHOTS = Path(__file__).resolve().parent.parent / "reports" / "screenshots"
PHONE = {"width": 360, "height": 640}  # the narrowest common phone viewport
CONTROLS = ["#nick", "#room", "#join", "#leave", "#text", "#send"]


def screenshot_path(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / name


@pytest.fixture
async def chat(node: ergopy.Node) -> Chat:
    return await start_chat(node, ChatOptions(host="127.0.0.1", port=0, workers=2))


async def open_and_join(browser: Any, url: str, nick: str, room: str, viewport: Any = None) -> Any:
    page = await browser.new_page(viewport=viewport or {"width": 720, "height": 520})
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
    shot = screenshot_path("chat.png")
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
    await expect(alice.locator("#messages li.error").last).to_contain_text("disconnected (1001", timeout=TIMEOUT_MS)
    await expect(alice.locator("#status")).to_contain_text("reconnecting in")


async def assert_within_width(page: Any, width: int) -> None:
    """Every control lies inside the viewport's width and the page does not scroll sideways."""
    scroll_width = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"the page is {scroll_width} px wide at {width} px"
    for selector in CONTROLS:
        box = await page.locator(selector).bounding_box()
        assert box is not None, f"{selector} is not shown"
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, f"{selector} sticks out: {box}"
        assert box["width"] >= 40 and box["height"] >= 24, f"{selector} is too small to use: {box}"


async def test_the_page_is_usable_at_360_px(chat: Chat, browser: Any) -> None:
    alice = await open_and_join(browser, chat.url, "alice", "garden", viewport=PHONE)
    await assert_within_width(alice, PHONE["width"])
    await alice.fill("#text", "a line typed on a phone, long enough to wrap on a narrow screen without overflowing")
    await alice.click("#send")
    await expect(alice.locator("#messages li.message .text").last).to_have_text(
        "a line typed on a phone, long enough to wrap on a narrow screen without overflowing", timeout=TIMEOUT_MS
    )
    await assert_within_width(alice, PHONE["width"])
    shot = screenshot_path("chat-360.png")
    await alice.screenshot(path=str(shot))
    assert shot.stat().st_size > 0
    await alice.click("#leave")
    await expect(alice.locator("#room-name")).to_have_text("not in a room", timeout=TIMEOUT_MS)
    await expect(alice.locator("#messages li.presence").last).to_have_text("you left garden")


async def test_join_while_in_a_room_says_you_left_the_previous_one(chat: Chat, browser: Any) -> None:
    alice = await open_and_join(browser, chat.url, "alice", "garden")
    await alice.fill("#room", "kitchen")
    await alice.click("#join")
    await expect(alice.locator("#room-name")).to_have_text("room: kitchen", timeout=TIMEOUT_MS)
    notices = alice.locator("#messages li.presence")
    await expect(notices).to_have_text(
        ["you joined garden as alice", "you left garden", "you joined kitchen as alice"], timeout=TIMEOUT_MS
    )


async def test_after_a_server_restart_the_page_reconnects_and_rejoins_its_room(node: ergopy.Node, browser: Any) -> None:
    first = await start_chat(node, ChatOptions(host="127.0.0.1", port=0, workers=2))
    alice = await open_and_join(browser, first.url, "alice", "garden")
    await node.stop()  # the server goes away: close 1001
    await expect(alice.locator("#status")).to_contain_text("reconnecting", timeout=TIMEOUT_MS)
    await expect(alice.locator("#messages li.error").last).to_contain_text("disconnected (1001")
    await expect(alice.locator("#room-name")).to_have_text("not in a room")

    restarted = await ergopy.start_node("restarted@localhost", gen.NodeOptions(stop_timeout=5.0))
    try:
        second = await start_chat(restarted, ChatOptions(host="127.0.0.1", port=first.port, workers=2))
        assert second.url == first.url
        await expect(alice.locator("#status")).to_have_text("connected", timeout=TIMEOUT_MS)
        await expect(alice.locator("#room-name")).to_have_text("room: garden", timeout=TIMEOUT_MS)
        await expect(alice.locator("#messages li.presence").last).to_have_text("reconnected: rejoined garden as alice")
        # the rejoined page is a member again: a line from another page reaches it
        bob = await open_and_join(browser, second.url, "bob", "garden")
        await bob.fill("#text", "welcome back")
        await bob.press("#text", "Enter")
        await expect(alice.locator("#messages li.message .text").last).to_have_text("welcome back", timeout=TIMEOUT_MS)
        await alice.screenshot(path=str(screenshot_path("chat-reconnected.png")))
    finally:
        await restarted.stop()


async def test_reconnect_delays_back_off_with_jitter(node: ergopy.Node, browser: Any) -> None:
    first = await start_chat(node, ChatOptions(host="127.0.0.1", port=0, workers=1))
    page = await browser.new_page()
    await page.goto(first.url)
    await expect(page.locator("#status")).to_have_text("connected", timeout=TIMEOUT_MS)
    delays = await page.evaluate("[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(n => reconnectDelay(n))")
    assert all(250 <= d <= 10_000 for d in delays), delays
    assert delays[0] <= 500 and delays[10] >= 5_000, delays  # grows from half a second, up to a cap
    same_step = await page.evaluate("Array.from({length: 20}, () => reconnectDelay(4))")
    assert len(set(same_step)) >= 10, f"jittered, not a fixed schedule: {same_step}"


async def test_two_pages_on_two_nodes_talk_in_one_room(browser: Any) -> None:
    """Issue 11: one chat service on two nodes (two Ergo nodes on the network, each
    serving the page on a port of its own); one page on each node, the same room. Each
    line crosses to the other node as one event frame and reaches the other page."""
    names = ("chat1@localhost", "chat2@localhost")
    nodes = []
    for name in names:
        acceptor = gen.AcceptorOptions(host="127.0.0.1", port=0)
        net = gen.NetworkOptions(cookie="browser-secret", acceptors=[acceptor], registrar=False)
        nodes.append(await ergopy.start_node(name, gen.NodeOptions(network=net, stop_timeout=5.0)))
    try:
        for me, other in ((0, 1), (1, 0)):  # static routes, each to the other's acceptor
            port = nodes[other].network.acceptors()[0].port
            nodes[me].network.add_route(names[other], gen.NetworkRoute(host="127.0.0.1", port=port))
        await nodes[0].network.get_node(names[1])
        chats = [await start_chat(n, ChatOptions(host="127.0.0.1", port=0, workers=2, cluster=names)) for n in nodes]
        assert chats[0].port != chats[1].port
        alice = await open_and_join(browser, chats[0].url, "alice", "garden")
        bob = await open_and_join(browser, chats[1].url, "bob", "garden")
        await expect(alice.locator("#count")).to_have_text("2 users online", timeout=TIMEOUT_MS)
        await expect(alice.locator("#messages li.presence").last).to_have_text("bob joined (2 online)")
        await bob.fill("#text", "hello from node 2")
        await bob.press("#text", "Enter")
        await expect(alice.locator("#messages li.message .text").last).to_have_text(
            "hello from node 2", timeout=TIMEOUT_MS
        )
        await alice.fill("#text", "and hello from node 1")
        await alice.press("#text", "Enter")
        await expect(bob.locator("#messages li.message .text").last).to_have_text(
            "and hello from node 1", timeout=TIMEOUT_MS
        )
        for page, name in ((alice, "chat-node1.png"), (bob, "chat-node2.png")):
            shot = screenshot_path(name)
            await page.screenshot(path=str(shot))
            assert shot.stat().st_size > 0
    finally:
        for n in nodes:
            await n.stop()
