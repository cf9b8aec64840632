"""Talks to one or more Rasa servers over their REST channel; one fixed server per conversation."""

from __future__ import annotations

import hashlib
from typing import Any

import aiohttp

from bot.channels.base import Button, ProductCard, Reply


class RasaUnavailable(Exception):
    """The Rasa server did not answer; the message stays in the inbox to be retried."""


def server_for(conversation_id: str, urls: list[str]) -> str:
    """Stable choice: a conversation always goes to the same Rasa process (see DESIGN.md)."""
    digest = hashlib.blake2b(conversation_id.encode(), digest_size=8).digest()
    return urls[int.from_bytes(digest, "big") % len(urls)]


def replies_from_rasa(messages: list[dict[str, Any]]) -> list[Reply]:
    replies: list[Reply] = []
    for message in messages:
        custom = message.get("custom") or {}
        cards = tuple(ProductCard.from_json(c) for c in custom.get("cards", []))
        buttons = tuple(
            Button(str(b.get("title", "")), str(b.get("payload", "")))
            for b in message.get("buttons") or []
        )
        text = message.get("text") or custom.get("text")
        previous = replies[-1] if replies else None
        if cards and not text and not buttons and previous is not None and not previous.cards:
            # Rasa sends an action's text and its custom JSON (the cards) as two messages
            replies[-1] = Reply(text=previous.text, buttons=previous.buttons, cards=cards)
        elif text or buttons or cards:
            replies.append(Reply(text=text, buttons=buttons, cards=cards))
    return replies


class RasaClient:
    def __init__(self, urls: list[str], timeout_s: float) -> None:
        if not urls:
            raise ValueError("at least one Rasa URL is needed")
        self.urls = urls
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=200, limit_per_host=100)
        self._http = aiohttp.ClientSession(connector=connector, timeout=self._timeout)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def send(self, conversation_id: str, text: str, metadata: dict[str, Any]) -> list[Reply]:
        if self._http is None:
            raise RuntimeError("RasaClient.start() was not called")
        url = f"{server_for(conversation_id, self.urls)}/webhooks/rest/webhook"
        body = {"sender": conversation_id, "message": text, "metadata": metadata}
        try:
            async with self._http.post(url, json=body) as response:
                if response.status != 200:
                    raise RasaUnavailable(f"Rasa answered {response.status} at {url}")
                data = await response.json()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise RasaUnavailable(f"Rasa at {url} is unreachable: {error}") from error
        return replies_from_rasa(data if isinstance(data, list) else [])

    async def in_form(self, conversation_id: str) -> bool:
        """Whether the conversation is inside a form right now.

        Asks the endpoint `bot/rasa_boot.py` adds to Rasa, which reads the current session only
        (Rasa's own `GET .../tracker` replays every session the conversation ever had).
        """
        if self._http is None:
            raise RuntimeError("RasaClient.start() was not called")
        base = server_for(conversation_id, self.urls)
        url = f"{base}/conversations/{conversation_id}/active_loop"
        try:
            async with self._http.get(url) as response:
                if response.status != 200:
                    raise RasaUnavailable(f"Rasa answered {response.status} at {url}")
                state = await response.json()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise RasaUnavailable(f"Rasa at {url} is unreachable: {error}") from error
        return bool(state.get("active_loop"))

    async def start_new_session(self, conversation_id: str) -> None:
        """Open a new Rasa session (slots are carried over, see domain.yml's session_config).

        Rasa loads and ships every event of the current session on each turn, so a long
        conversation gets slower turn by turn; a fresh session keeps the tracker short.
        """
        await self.send(conversation_id, "/session_start", {})

    async def healthy(self) -> bool:
        if self._http is None:
            return False
        for url in self.urls:
            try:
                async with self._http.get(f"{url}/status") as response:
                    if response.status != 200:
                        return False
            except (aiohttp.ClientError, TimeoutError):
                return False
        return True
