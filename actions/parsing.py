"""Turn free text from the customer into order contacts, addresses and return items."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

PAYLOAD_RE = re.compile(r"^/(?P<intent>[A-Za-z0-9_]+)(?P<args>\{.*\})?\s*$", re.DOTALL)
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
POSTCODE_RE = re.compile(r"^(?=.*\d)[A-Za-z0-9][A-Za-z0-9 \-]{1,9}$")
_FILLER_RE = re.compile(
    r"\b(my|the|it'?s|it is|is|postcode|post code|postal code|zip( code)?|e-?mail( address)?|"
    r"address|on the order|please|thanks?)\b[:,]?",
    re.IGNORECASE,
)


def contact_candidates(text: str) -> list[str]:
    """The e-mail or postcode a customer most likely meant, best guess first (may be empty)."""
    email = EMAIL_RE.search(text)
    if email:
        return [email.group(0)]
    stripped = _FILLER_RE.sub(" ", text)
    tokens = stripped.replace(",", " ").split()
    candidates = [" ".join(stripped.split()), *(" ".join(tokens[-n:]) for n in (2, 1))]
    seen: list[str] = []
    for candidate in candidates:
        candidate = candidate.strip(" .!")
        if candidate and POSTCODE_RE.match(candidate) and candidate not in seen:
            seen.append(candidate)
    return seen


@dataclass(frozen=True)
class AddressParts:
    line1: str
    postcode: str
    city: str
    country: str | None


_POSTCODE_CITY_RE = re.compile(
    r"^(?P<postcode>(?=[A-Za-z0-9 \-]*\d)[A-Za-z0-9]{2,5}(?:[ \-][A-Za-z0-9]{2,3})?)\s+"
    r"(?P<city>[^\d,][^,]*)$"
)


def parse_address(text: str) -> AddressParts | None:
    """Parse "street and number, postcode city[, country]"; None when it is not that shape."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if len(parts) < 2 or len(text) > 300:
        return None
    line1 = parts[0]
    if not any(ch.isdigit() for ch in line1) or len(line1) < 4:
        return None
    match = _POSTCODE_CITY_RE.match(parts[1])
    if not match:
        return None
    country = parts[2] if len(parts) > 2 else None
    if country is not None and not (2 <= len(country) <= 40):
        return None
    return AddressParts(
        line1=line1,
        postcode=match.group("postcode").upper(),
        city=match.group("city").strip(),
        country=country.upper() if country and len(country) == 2 else country,
    )


def payload_args(text: str) -> dict[str, Any]:
    """The JSON object after a `/intent` payload ({} when there is none or it is malformed)."""
    match = PAYLOAD_RE.match(text.strip())
    if not match or not match.group("args"):
        return {}
    try:
        args = json.loads(match.group("args"))
    except json.JSONDecodeError:
        return {}
    return args if isinstance(args, dict) else {}
