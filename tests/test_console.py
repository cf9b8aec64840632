"""Human handoff and the support console against the real stack (Rasa + app + fake Telegram).

Checked at the boundaries: what Rasa's tracker received, what the widget's WebSocket and the
Telegram peer got, what the store holds.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import select

from bot.handoff import escalate_in
from bot.settings import Settings
from bot.store import support
from bot.store.db import make_engine, session_scope
from bot.store.support import AuditLog, HandoffTicket
from tests.conftest import ensure_model
from tests.console_client import ConsoleUser
from tests.fake_telegram import FakeTelegram
from tests.live_stack import Chat, Stack, post_json, start_stack
from tests.test_telegram import png

pytestmark = pytest.mark.rasa

TOKEN = "7000003:console-test-token"
AGENT = ("agent@example.com", "demo-agent-pass")
ADMIN = ("admin@example.com", "demo-admin-pass")
BEN = ("ben@example.com", "ben-password-123")
MARKETER = ("mark@example.com", "marketer-pass-1")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTelegram]:
    server = FakeTelegram().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def live(fake: FakeTelegram, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    ensure_model()
    env = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_BASE_URL": fake.base_url,
        "TELEGRAM_BASE_FILE_URL": fake.base_file_url,
        "TELEGRAM_POLL_LEASE_SECONDS": "3",
        "SUPPORT_HOURS": "",  # always open: the closed-hours wording is tested in the store
    }
    stack = start_stack(Path(tmp_path_factory.mktemp("console")), extra_env=env)
    try:
        stack.bot("staff", "demo")
        stack.bot("staff", "add", BEN[0], "--name", "Ben Berg", "--role", "agent",
                  "--password", BEN[1])  # fmt: skip
        stack.bot("staff", "add", MARKETER[0], "--name", "Mark", "--role", "marketer",
                  "--password", MARKETER[1])  # fmt: skip
        fake.wait_for(lambda: fake.calls(TOKEN, "getUpdates"), 30, "the app to poll")
        yield stack
    finally:
        stack.stop()


def engine(stack: Stack) -> Any:
    return make_engine(f"sqlite:///{stack.data_dir / 'shop.db'}")


def signed_in(stack: Stack, account: tuple[str, str]) -> ConsoleUser:
    user = ConsoleUser(stack.base_url)
    assert user.login(*account).status == 303
    assert user.csrf
    return user


def rasa_user_turns(stack: Stack, conversation_id: str) -> int:
    """User events in Rasa's tracker for this sender: the boundary human mode must not cross."""
    url = f"http://127.0.0.1:{stack.rasa_ports[0]}/conversations/{conversation_id}/tracker"
    with urllib.request.urlopen(url + "?include_events=ALL", timeout=10) as response:
        tracker = json.loads(response.read())
    events = tracker.get("events") or []
    # "/session_start" is the app telling Rasa that staff handed the conversation back
    return sum(1 for e in events if e.get("event") == "user" and e.get("text") != "/session_start")


def ask_for_person(stack: Stack, session: str) -> dict[str, Any]:
    status, body = post_json(f"{stack.base_url}/api/v1/sessions/{session}/handoff", {})
    assert status == 200, body
    return dict(body)


def ticket_of(stack: Stack, conversation_id: str) -> HandoffTicket:
    with session_scope(engine(stack)) as session:
        tickets = support.tickets_of_conversation(session, conversation_id)
    assert tickets, f"no ticket for {conversation_id}"
    return tickets[-1]


async def frames_until(ws: aiohttp.ClientWebSocketResponse, check: Any, timeout: float = 15) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.receive_json()
            if frame.get("type") == "message" and check(frame["message"]):
                return frame["message"]


# --- authorisation --------------------------------------------------------------------------

TICKET_GETS = ["/console/queue", "/console/api/queue", "/console/tickets/1", "/console/report",
               "/console/canned", "/console/media/" + "a" * 64, "/console/ws"]  # fmt: skip
ADMIN_GETS = ["/console/staff", "/console/audit"]
TICKET_POSTS = [f"/console/tickets/1/{a}" for a in
                ("claim", "reply", "note", "transfer", "release", "resolve")]  # fmt: skip
ADMIN_POSTS = ["/console/canned", "/console/canned/1/delete", "/console/staff"]
CAMPAIGN_GETS = ["/console/campaigns", "/console/campaigns/new", "/console/campaigns/1",
                 "/console/campaigns/1/export.csv"]  # fmt: skip
CAMPAIGN_POSTS = ["/console/campaigns", "/console/campaigns/preview", "/console/api/segments/count",
                  "/console/campaigns/1/pause"]  # fmt: skip


def test_every_console_route_refuses_anonymous_and_wrong_roles(live: Stack) -> None:
    anonymous = ConsoleUser(live.base_url)
    for path in ["/console", *TICKET_GETS, *ADMIN_GETS]:
        page = anonymous.get(path)
        to_login = page.status == 303 and "/console/login" in page.headers["Location"]
        assert to_login or (page.status == 401 and "/api/" in path), path
        assert anonymous.get(path, as_json=True).status == 401, path
    for path in [*TICKET_POSTS, *ADMIN_POSTS, "/console/logout"]:
        assert anonymous.post(path, {"text": "x"}).status == 401, path

    marketer = signed_in(live, MARKETER)
    home = marketer.get("/console")
    assert home.status == 303 and home.headers["Location"] == "/console/campaigns"
    for path in CAMPAIGN_GETS:
        assert marketer.get(path).status in (200, 404), path
    for path in [*TICKET_GETS, *ADMIN_GETS]:
        assert marketer.get(path).status == 403, path
    for path in [*TICKET_POSTS, *ADMIN_POSTS]:
        assert marketer.post(path, {"text": "x"}).status == 403, path

    agent = signed_in(live, AGENT)
    for path in CAMPAIGN_GETS:  # only marketers and admins run campaigns
        assert agent.get(path).status == 403, path
        assert anonymous.get(path, as_json=True).status == 401, path
    for path in CAMPAIGN_POSTS:
        assert agent.post(path, {"name": "x"}).status == 403, path
        assert anonymous.post(path, {"name": "x"}).status == 401, path
    for path in ADMIN_GETS:
        assert agent.get(path).status == 403, path
    for path in ADMIN_POSTS:
        assert agent.post(path, {"title": "t", "body": "b"}).status == 403, path
    assert agent.get("/console/queue").status == 200

    # CSRF: a state-changing call without the session's token (or with another's) is refused
    session_id = "csrf" + secrets.token_hex(8)
    ask_for_person(live, session_id)
    ticket_id = ticket_of(live, f"web:{session_id}").id
    assert agent.post(f"/console/tickets/{ticket_id}/claim", csrf="").status == 403
    assert agent.post(f"/console/tickets/{ticket_id}/claim", csrf=marketer.csrf).status == 403
    login_form_without_token = ConsoleUser(live.base_url).request(
        "POST", "/console/login", {"email": AGENT[0], "password": AGENT[1]}, csrf=""
    )
    assert login_form_without_token.status == 403
    assert ticket_of(live, f"web:{session_id}").state == "waiting"
    # a forged or tampered session cookie is no session at all
    forged = ConsoleUser(live.base_url)
    forged.login(*AGENT)
    for cookie in forged.jar:
        if cookie.name == "nw_console":
            cookie.value = cookie.value[:-3] + "AAA"
    assert forged.get("/console/queue").status == 303
    assert ConsoleUser(live.base_url).login(AGENT[0], "wrong password").status == 401


# --- the web customer: human mode, agent reply, CSAT -----------------------------------------


async def test_web_customer_is_served_by_a_person_and_rates_the_help(live: Stack) -> None:
    session_id = "web" + secrets.token_hex(8)
    conversation_id = f"web:{session_id}"
    chat = Chat(live.base_url, session_id)
    await asyncio.to_thread(chat.say, "hi")
    turns_before = await asyncio.to_thread(rasa_user_turns, live, conversation_id)

    answer = await asyncio.to_thread(ask_for_person, live, session_id)
    text = answer["messages"][0]["text"]
    assert "support team" in text and ("next in line" in text or "in the queue" in text)

    # while waiting: stored, never answered by the bot, never sent to Rasa
    for words in ("my parcel arrived torn", "are you there?"):
        assert await asyncio.to_thread(chat.send, words) == []
    agent = await asyncio.to_thread(signed_in, live, AGENT)
    queue = (await asyncio.to_thread(agent.get, "/console/api/queue", True)).json()["tickets"]
    row = next(t for t in queue if t["customer"].endswith(session_id[:10]))
    assert row["channel"] == "web" and row["reason"] == "asked_for_human"
    assert [m["text"] for m in row["last_messages"]][-1] == "are you there?"
    ticket_id = row["id"]

    claimed = await asyncio.to_thread(agent.post, f"/console/tickets/{ticket_id}/claim")
    assert claimed.status == 200 and claimed.json()["holder"] == "Alex Agent"
    page = await asyncio.to_thread(agent.get, f"/console/tickets/{ticket_id}")
    assert "my parcel arrived torn" in page.text and "What the bot understood" in page.text
    assert "greet" in page.text  # the intent Rasa read from "hi"

    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{live.base_url}/ws?session={session_id}")
        history = await ws.receive_json()
        assert history["type"] == "history"
        reply = "Hi, I'm Alex. Sorry about the parcel, I'll send a new one today."
        sent = await asyncio.to_thread(
            agent.post, f"/console/tickets/{ticket_id}/reply", {"text": reply}
        )
        assert sent.status == 200
        got = await frames_until(ws, lambda m: m["text"] == reply)
        assert got["agent"] == "Alex Agent" and got["role"] == "bot"

        search = await asyncio.to_thread(agent.get, f"/console/tickets/{ticket_id}?q=jacket")
        product_id = search.text.split('name="product_id" value="')[1].split('"')[0]
        await asyncio.to_thread(
            agent.post, f"/console/tickets/{ticket_id}/reply", {"product_id": product_id}
        )
        card = await frames_until(ws, lambda m: bool(m["cards"]))
        assert card["cards"][0]["product_id"] == int(product_id)

        note = "customer is upset; refund shipping"
        await asyncio.to_thread(agent.post, f"/console/tickets/{ticket_id}/note", {"body": note})
        resolved = await asyncio.to_thread(agent.post, f"/console/tickets/{ticket_id}/resolve")
        assert resolved.status == 200
        question = await frames_until(ws, lambda m: bool(m["buttons"]))
        assert "1 (not at all) to 5" in question["text"]
        assert [b["title"] for b in question["buttons"]] == ["1", "2", "3", "4", "5"]
        await ws.close()

    assert await asyncio.to_thread(rasa_user_turns, live, conversation_id) == turns_before
    thanks = await asyncio.to_thread(chat.send, None, question["buttons"][3]["payload"])
    assert "Thank you for the rating" in thanks[0]["text"]
    ticket = await asyncio.to_thread(ticket_of, live, conversation_id)
    assert ticket.state == "resolved" and ticket.csat == 4
    transcript = (await asyncio.to_thread(chat_history, live, session_id))["messages"]
    assert all(note not in (m["text"] or "") for m in transcript)  # notes stay internal
    # back with the bot: the next message reaches Rasa again
    await asyncio.to_thread(chat.say, "hello")
    assert await asyncio.to_thread(rasa_user_turns, live, conversation_id) > turns_before


def chat_history(stack: Stack, session_id: str) -> dict[str, Any]:
    url = f"{stack.base_url}/api/v1/sessions/{session_id}/messages"
    with urllib.request.urlopen(url, timeout=10) as response:
        return dict(json.loads(response.read()))


# --- the claim race -------------------------------------------------------------------------


def test_two_agents_claim_at_once_exactly_one_gets_it(live: Stack) -> None:
    session_id = "race" + secrets.token_hex(8)
    ask_for_person(live, session_id)
    ticket_id = ticket_of(live, f"web:{session_id}").id
    alex, ben = signed_in(live, AGENT), signed_in(live, BEN)
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def claim(name: str, user: ConsoleUser) -> None:
        barrier.wait()
        results[name] = user.post(f"/console/tickets/{ticket_id}/claim")

    threads = [threading.Thread(target=claim, args=a) for a in (("alex", alex), ("ben", ben))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status for r in results.values())
    assert statuses == [200, 409], {k: (v.status, v.text) for k, v in results.items()}
    winner = next(k for k, r in results.items() if r.status == 200)
    loser = results["ben" if winner == "alex" else "alex"].json()["error"]
    holder = {"alex": "Alex Agent", "ben": "Ben Berg"}[winner]
    assert loser["code"] == "AlreadyClaimed" and loser["holder"] == holder
    assert holder in loser["message"]
    with session_scope(engine(live)) as session:
        claims = session.exec(
            select(AuditLog).where(
                AuditLog.ticket_id == ticket_id, AuditLog.action == "ticket_claim"
            )
        ).all()
    assert len(claims) == 1


# --- Telegram -------------------------------------------------------------------------------


def test_telegram_customer_gets_the_agents_reply_and_the_csat_buttons(
    live: Stack, fake: FakeTelegram
) -> None:
    chat_id = 4242
    conversation_id = f"telegram:{chat_id}"
    fake.send_text(TOKEN, chat_id, "hello")
    fake.wait_for(lambda: fake.delivered_texts(TOKEN, chat_id), 30, "the greeting")
    now_settings = Settings(support_hours="")
    from datetime import UTC, datetime

    with session_scope(engine(live)) as session:
        escalate_in(session, conversation_id, "complaint", now_settings, datetime.now(UTC))
    turns_before = rasa_user_turns(live, conversation_id)
    seen_before = len(fake.delivered_texts(TOKEN, chat_id))
    fake.send_text(TOKEN, chat_id, "this is the third time I write!")

    agent = signed_in(live, ADMIN)  # admins work tickets too
    ticket_id = ticket_of(live, conversation_id).id

    def in_queue() -> bool:
        queue = agent.get("/console/api/queue", as_json=True).json()["tickets"]
        row = next((t for t in queue if t["id"] == ticket_id), None)
        texts = [m["text"] for m in row["last_messages"]] if row else []
        return "this is the third time I write!" in texts

    fake.wait_for(in_queue, 15, "the customer's message in the console")
    photo = png(16, 16)  # a photo in human mode reaches the console, not the bot
    fake.push(
        TOKEN, {"message": fake.message(chat_id, caption="see?", photo=fake.photo_sizes(photo))}
    )
    digest = hashlib.sha256(photo).hexdigest()
    fake.wait_for(lambda: digest in agent.get(f"/console/tickets/{ticket_id}").text, 15, "photo")
    served = agent.get(f"/console/media/{digest}")
    assert served.body == photo and served.headers["Content-Type"] == "image/png"
    assert ConsoleUser(live.base_url).get(f"/console/media/{digest}").status == 303
    assert agent.post(f"/console/tickets/{ticket_id}/claim").status == 200
    reply = "I'm so sorry — I've refunded your order right now."
    assert agent.post(f"/console/tickets/{ticket_id}/reply", {"text": reply}).status == 200
    fake.wait_for(lambda: reply in fake.delivered_texts(TOKEN, chat_id), 15, "the agent's reply")
    assert len(fake.delivered_texts(TOKEN, chat_id)) == seen_before + 1  # the bot stayed quiet
    assert rasa_user_turns(live, conversation_id) == turns_before
    assert agent.post(f"/console/tickets/{ticket_id}/resolve").status == 200
    fake.wait_for(
        lambda: any("1 (not at all)" in t for t in fake.delivered_texts(TOKEN, chat_id)),
        15, "the CSAT question",
    )  # fmt: skip
    question = [c for c in fake.calls(TOKEN, "sendMessage", chat_id) if c.status == 200][-1]
    keyboard = question.params["reply_markup"]
    keyboard = json.loads(keyboard) if isinstance(keyboard, str) else keyboard
    five = next(b for row in keyboard["inline_keyboard"] for b in row if b["text"] == "5")
    bot_message = fake._bot_message(chat_id, text=question.params["text"], reply_markup=keyboard)
    fake.press(TOKEN, chat_id, bot_message, five["callback_data"])
    fake.wait_for(lambda: ticket_of(live, conversation_id).csat == 5, 15, "the stored rating")


# --- canned responses, transfer, report, audit ----------------------------------------------


def test_canned_responses_transfer_report_and_audit(live: Stack) -> None:
    admin, alex = signed_in(live, ADMIN), signed_in(live, AGENT)
    created = admin.post(
        "/console/canned", {"title": "Refund", "body": "Your refund is on its way."}
    )
    assert created.status == 200
    canned_id = str(created.json()["id"])
    session_id = "canned" + secrets.token_hex(8)
    ask_for_person(live, session_id)
    ticket_id = ticket_of(live, f"web:{session_id}").id
    assert alex.post(f"/console/tickets/{ticket_id}/claim").status == 200
    assert "Your refund is on its way." in alex.get(f"/console/tickets/{ticket_id}").text
    assert alex.post(f"/console/tickets/{ticket_id}/reply", {"canned_id": canned_id}).status == 200
    assert "Your refund is on its way." in [
        m["text"] for m in chat_history(live, session_id)["messages"]
    ]
    with session_scope(engine(live)) as session:
        ben_id = support.find_staff_by_email(session, BEN[0]).id  # type: ignore[union-attr]
    moved = alex.post(f"/console/tickets/{ticket_id}/transfer", {"to": str(ben_id)})
    assert moved.status == 200 and "Ben Berg" in moved.json()["message"]
    # the ticket is Ben's now: Alex may no longer answer or resolve it
    assert alex.post(f"/console/tickets/{ticket_id}/reply", {"text": "hi"}).status == 409
    ben = signed_in(live, BEN)
    assert ben.post(f"/console/tickets/{ticket_id}/resolve").status == 200
    assert ben.post(f"/console/tickets/{ticket_id}/resolve").status == 409  # resolved already

    report = alex.get("/console/report").text
    assert report.count("<svg") == 3 and "Tickets per day" in report
    assert "asked for human" in report
    assert admin.post(f"/console/canned/{canned_id}/delete").status == 200
    audit = admin.get("/console/audit").text
    for action in ("login", "ticket_claim", "ticket_reply", "ticket_transfer", "ticket_resolve",
                   "canned_save", "canned_delete", "report_view"):  # fmt: skip
        assert f"<td>{action}</td>" in audit, action


# --- campaigns --------------------------------------------------------------------------------

DEMO_OPTED_IN_WEB = 8  # bot/demo_data.py: demo-customer-01 … -08 opted in on the web chat


def campaign_form(**fields: str) -> dict[str, str]:
    return {
        "name": "Winter sale", "channel": "web",
        "a_text": "Hi {first_name}, the winter sale is on!", "a_cards": "picked", "a_count": "2",
        "a_button1_title": "Shop the sale",
        "a_button1_url": "https://shop.example/sale", "timezone": "Europe/Berlin",
        "quiet_start": "", "quiet_end": "", "attribution_days": "7", "intent": "send", **fields,
    }  # fmt: skip


def test_marketer_counts_previews_sends_and_reads_the_results(live: Stack) -> None:
    mark = signed_in(live, MARKETER)
    count = mark.post("/console/api/segments/count", {"channel": "web"})
    assert count.status == 200, count.text
    assert count.json() == {"matching": count.json()["matching"], "recipients": DEMO_OPTED_IN_WEB}
    narrower = mark.post("/console/api/segments/count", {"channel": "web", "min_orders": "3"})
    assert narrower.json()["recipients"] < DEMO_OPTED_IN_WEB
    bad = mark.post("/console/api/segments/count", {"rfm": "vip"})
    assert bad.status == 400 and "unknown RFM segment" in bad.json()["error"]["message"]

    preview = mark.post("/console/campaigns/preview", campaign_form(), as_json=False)
    assert preview.status == 200 and "Preview for" in preview.text
    assert "the winter sale is on!" in preview.text and "Unsubscribe" in preview.text
    wrong = mark.post("/console/campaigns", campaign_form(a_text="Hi {name}"))
    assert wrong.status == 400 and "unknown placeholder" in wrong.json()["error"]["message"]
    zone = mark.post("/console/campaigns", campaign_form(timezone="Mars/Olympus"))
    assert zone.status == 400 and "time zone" in zone.json()["error"]["message"]

    created = mark.post("/console/campaigns", campaign_form())
    assert created.status == 200, created.text
    campaign_id = created.json()["id"]
    report = f"/console/campaigns/{campaign_id}"

    def finished() -> bool:
        return bool(mark.get(report, as_json=True).json()["status"] == "done")

    deadline = time.monotonic() + 60
    while not finished() and time.monotonic() < deadline:
        time.sleep(0.2)
    state = mark.get(report, as_json=True).json()
    assert state["status"] == "done" and state["total"]["audience"] == DEMO_OPTED_IN_WEB
    # the customer's chat holds the message with cards, the tracked link and unsubscribe
    history = chat_history(live, "demo-customer-01-northwind")["messages"]
    message = next(m for m in history if "winter sale" in (m["text"] or ""))
    assert message["text"].startswith("Hi ") and len(message["cards"]) == 2
    link, unsubscribe = message["buttons"]
    assert unsubscribe["payload"] == "/unsubscribe"
    assert link["payload"].startswith(f"{live.base_url}/r/")
    follow = ConsoleUser(live.base_url).get(link["payload"][len(live.base_url) :])
    assert follow.status == 302 and follow.headers["Location"] == "https://shop.example/sale"
    assert ConsoleUser(live.base_url).get("/r/forged-token").status == 404
    assert mark.get(report, as_json=True).json()["total"]["clicked"] == 1
    page = mark.get(report).text
    assert page.count("<svg") == 3 and "Deliveries over time" in page
    csv_lines = mark.get(f"{report}/export.csv").text.strip().splitlines()
    assert len(csv_lines) == DEMO_OPTED_IN_WEB + 1 and csv_lines[0].startswith("delivery_id")

    # a draft scheduled for later can be paused, resumed and cancelled, never resumed again
    draft = mark.post("/console/campaigns", campaign_form(intent="draft", name="Later"))
    draft_page = f"/console/campaigns/{draft.json()['id']}"
    assert mark.post(f"{draft_page}/schedule", {"send_at": "2099-01-01T09:00"}).status == 200
    assert mark.post(f"{draft_page}/pause").json()["status"] == "paused"
    assert mark.post(f"{draft_page}/resume").json()["status"] == "scheduled"
    assert mark.post(f"{draft_page}/cancel").json()["status"] == "cancelled"
    assert mark.post(f"{draft_page}/resume").status == 409
    audit = signed_in(live, ADMIN).get("/console/audit").text
    for action in ("campaign_create", "campaign_pause", "campaign_cancel"):
        assert f"<td>{action}</td>" in audit, action
