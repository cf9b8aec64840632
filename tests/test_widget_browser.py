"""The web widget in a real headless Chromium (Debian's package) driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.live_stack import ROOT, Stack

pytestmark = [pytest.mark.rasa, pytest.mark.browser]

ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("Chromium is not installed (scripts/setup.sh --browser installs Debian's)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def bot_texts(page: object) -> list[str]:
    return list(page.locator("#chat-log .msg.bot").all_inner_texts())  # type: ignore[attr-defined]


def send(page: object, text: str) -> None:
    before = page.locator("#chat-log .msg.bot").count()  # type: ignore[attr-defined]
    page.fill("#chat-input", text)  # type: ignore[attr-defined]
    page.keyboard.press("Enter")  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "n => document.querySelectorAll('#chat-log .msg.bot').length > n", arg=before
    )


def test_order_status_conversation_in_the_widget(stack: Stack, browser: object) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    order = next(o for o in stack.orders() if o["status"] == "shipped")
    context = browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(stack.base_url + "/")
    page.wait_for_selector("body[data-chat-state='connected']")

    send(page, "hi")
    page.locator(".quick-replies button", has_text="Where is my order?").last.click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#chat-log .msg.bot')].some("
        "m => m.innerText.includes('order number'))"
    )
    send(page, order["number"])
    send(page, order["email"])
    page.wait_for_function(
        "t => document.querySelector('#chat-log').innerText.includes(t)",
        arg=order["tracking_number"],
    )
    # the status answer, possibly followed by one suggestion card
    answer = next(t for t in reversed(bot_texts(page)) if "You might also like" not in t)
    assert order["tracking_number"] in answer, bot_texts(page)[-3:]
    page.screenshot(path=str(ARTIFACTS / "widget-order-status.png"), full_page=True)

    # a reload continues the same conversation
    page.reload()
    page.wait_for_selector("body[data-chat-state='connected']")
    page.wait_for_function(
        "t => document.querySelector('#chat-log').innerText.includes(t)",
        arg=order["tracking_number"],
    )
    context.close()


def test_widget_works_at_phone_width_with_the_keyboard(stack: Stack, browser: object) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 360, "height": 720})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(stack.base_url + "/")
    page.wait_for_selector("body[data-chat-state='connected']")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.get_attribute("#chat-log", "role") == "log"
    page.focus("#chat-input")
    page.keyboard.type("what can you do?")
    page.keyboard.press("Enter")
    page.wait_for_selector(".quick-replies button")
    page.keyboard.press("Tab")  # focus moves on to real, reachable buttons
    page.screenshot(path=str(ARTIFACTS / "widget-phone.png"))
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    context.close()
