"""Handoff end to end in Chromium: a customer in the widget and an agent in the console,
two browser contexts side by side. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import pytest

from tests.live_stack import Stack
from tests.test_widget_browser import ARTIFACTS, browser  # noqa: F401  (the module fixture)

pytestmark = [pytest.mark.rasa, pytest.mark.browser]

AGENT = ("agent@example.com", "demo-agent-pass")


def test_customer_asks_for_a_person_agent_claims_replies_and_resolves(
    stack: Stack,
    browser: object,  # noqa: F811
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stack.bot("staff", "demo")
    shopper = browser.new_context(viewport={"width": 1100, "height": 800})  # type: ignore[attr-defined]
    staff = browser.new_context(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    try:
        customer = shopper.new_page()
        customer.goto(stack.base_url + "/")
        customer.wait_for_selector("body[data-chat-state='connected']")
        customer.click("#chat-human")
        customer.wait_for_function(
            "() => document.querySelector('#chat-log').innerText.includes('support team')"
        )
        customer.fill("#chat-input", "My jumper has a hole in it, can someone help?")
        customer.keyboard.press("Enter")
        customer.wait_for_selector(".msg.user[data-status='delivered'] >> text=hole in it")
        session_id = customer.evaluate("localStorage.getItem('northwind-chat:session')")

        agent = staff.new_page()
        agent.goto(stack.base_url + "/console/queue")
        assert "/console/login" in agent.url  # anonymous: sent to sign in
        agent.fill("#email", AGENT[0])
        agent.fill("#password", AGENT[1])
        agent.click("button[type=submit]")
        agent.wait_for_url("**/console/queue")
        agent.wait_for_selector("body[data-live='on']")
        row = agent.locator("#queue-body tr", has_text=session_id[:10])
        row.wait_for()
        assert "hole in it" in row.inner_text()
        agent.screenshot(path=str(ARTIFACTS / "console-queue.png"), full_page=True)
        row.locator("a").click()
        agent.click("#claim")
        agent.wait_for_selector("#reply-text")
        reply = "Hi, I'm Alex from the support team. I'm sorry! I'll send you a new jumper."
        agent.fill("#reply-text", reply)
        agent.click("#send-reply")
        customer.wait_for_function(
            "t => document.querySelector('#chat-log').innerText.includes(t)", arg=reply
        )
        assert (
            customer.locator(".msg--agent .msg__agent").last.inner_text().startswith("Alex Agent")
        )
        # the customer writes again; the console shows it live
        customer.fill("#chat-input", "Thank you so much!")
        customer.keyboard.press("Enter")
        agent.wait_for_selector("#transcript li.msg--customer >> text=Thank you so much!")
        agent.screenshot(path=str(ARTIFACTS / "console-ticket.png"), full_page=True)

        agent.click("#resolve")
        agent.wait_for_url("**/console/queue")
        customer.wait_for_selector(".quick-replies button >> text=5")
        assert "How happy are you" in customer.locator("#chat-log .msg.bot").last.inner_text()
        customer.screenshot(path=str(ARTIFACTS / "widget-handoff-csat.png"), full_page=True)
        customer.locator(".quick-replies button", has_text="5").last.click()
        customer.wait_for_function(
            "t => document.querySelector('#chat-log').innerText.includes(t)",
            arg="Thank you for the rating",
        )
    finally:
        shopper.close()
        staff.close()


MARKETER = ("marketer@example.com", "demo-marketer-pass")


def test_marketer_builds_a_segment_composes_previews_sends_and_sees_the_report(
    stack: Stack,
    browser: object,  # noqa: F811
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stack.bot("staff", "demo")
    context = browser.new_context(viewport={"width": 1300, "height": 900})  # type: ignore[attr-defined]
    try:
        page = context.new_page()
        page.goto(stack.base_url + "/console/login")
        page.fill("#email", MARKETER[0])
        page.fill("#password", MARKETER[1])
        page.click("button[type=submit]")
        page.wait_for_url("**/console/campaigns")
        page.click("text=New campaign")
        page.wait_for_url("**/console/campaigns/new")
        count = page.locator("#segment-count")
        page.wait_for_function("() => document.querySelector('#segment-count').dataset.recipients")
        everyone = int(count.get_attribute("data-recipients") or "0")
        assert everyone >= 8  # the demo's opted-in customers
        # the live count follows the filters
        page.fill("#min_orders", "99")
        page.wait_for_function(
            "() => document.querySelector('#segment-count').dataset.recipients === '0'"
        )
        page.fill("#min_orders", "")
        page.select_option("#channel", "web")
        page.wait_for_function(
            "n => document.querySelector('#segment-count').dataset.recipients === String(n)",
            arg=8,
        )
        page.fill("#name", "Browser winter sale")
        page.fill("#a_text", "Hello {first_name}, warm coats are 20% off this week!")
        page.select_option("#a_cards", "picked")
        page.fill("#a_button1_title", "See the coats")
        page.fill("#a_button1_url", stack.base_url + "/healthz?from=coats")
        page.fill("#quiet_start", "")
        page.fill("#quiet_end", "")
        page.click("button:has-text('Preview')")
        page.wait_for_selector("#preview")
        preview = page.locator("#preview").inner_text()
        assert "warm coats are 20% off" in preview and "Unsubscribe" in preview
        assert "{first_name}" not in preview
        page.screenshot(path=str(ARTIFACTS / "console-campaign-preview.png"), full_page=True)
        page.click("button:has-text('Schedule / send')")
        page.wait_for_url("**/console/campaigns/*")
        for _ in range(60):  # the sender runs in the app; the page shows what it did
            if page.locator("#campaign-status").inner_text() == "done":
                break
            page.wait_for_timeout(500)
            page.reload()
        assert page.locator("#campaign-status").inner_text() == "done"
        assert page.locator("#total-delivered").inner_text() == "8"
        assert page.locator("#total-clicked").inner_text() == "0"

        # a customer opens the chat, sees the message and follows its link
        customer = context.new_page()
        customer.goto(stack.base_url + "/?session=demo-customer-02-northwind")
        customer.wait_for_selector("#chat-log >> text=warm coats are 20% off")
        link = customer.locator("a.is-link", has_text="See the coats").last
        href = link.get_attribute("href") or ""
        assert href.startswith(stack.base_url + "/r/")
        customer.goto(href)  # the tracked address redirects to the marketer's one
        assert customer.url == stack.base_url + "/healthz?from=coats"
        page.reload()
        assert page.locator("#total-clicked").inner_text() == "1"
        page.screenshot(path=str(ARTIFACTS / "console-campaign-report.png"), full_page=True)
    finally:
        context.close()
