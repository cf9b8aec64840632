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
