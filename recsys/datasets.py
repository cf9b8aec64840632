"""Converters from public purchase data sets to `Interactions`.

UCI "Online Retail" (columns InvoiceNo, StockCode, Description, Quantity, InvoiceDate,
UnitPrice, CustomerID, Country): a line is kept when it is a sale to a known customer
(CustomerID present, Quantity > 0, UnitPrice > 0, invoice not a cancellation "C...") of a real
product (postage, fees, manual adjustments, vouchers and charity codes dropped). One event per
(customer, product, invoice): the timestamp is the invoice time, so one basket is one
(user, timestamp) pair. Weight 1 per event, not the quantity: quantities are pack sizes of
wholesalers (1 to 80,995), a measure of the buyer's size rather than of preference, and a
repeat purchase already counts once per invoice.

`online_retail_orders` reads the same file as orders (for RFM and churn): one `OrderRecord` per
invoice of a known customer that has at least one sale line (Quantity > 0, UnitPrice > 0),
cancellations "C..." skipped; the total is the sum of Quantity * UnitPrice over those lines
(postage and fees included: the customer paid them), the time is the invoice's (UTC).
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

from .data import Interactions, parse_time
from .rfm import OrderRecord

NON_PRODUCT_CODES = frozenset(
    {"POST", "DOT", "M", "C2", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK", "PADS"}
)


def is_product_code(code: str) -> bool:
    code = code.strip()
    return bool(code) and code.upper() not in NON_PRODUCT_CODES and not code.startswith("gift_")


def convert_online_retail(
    path: str | Path, since: int | None = None, until: int | None = None
) -> Interactions:
    """Purchases from an Online Retail transactions file, optionally in [since, until)."""
    seen: set[tuple[str, str, str]] = set()
    users: list[str] = []
    items: list[str] = []
    times: list[int] = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            customer = (row["CustomerID"] or "").strip()
            invoice = row["InvoiceNo"].strip()
            code = row["StockCode"].strip()
            if not customer or invoice.upper().startswith("C") or not is_product_code(code):
                continue
            try:
                if int(float(row["Quantity"])) <= 0 or float(row["UnitPrice"]) <= 0:
                    continue
            except ValueError:
                continue
            moment = parse_time(row["InvoiceDate"])
            if (since is not None and moment < since) or (until is not None and moment >= until):
                continue
            key = (customer, code, invoice)
            if key in seen:
                continue
            seen.add(key)
            users.append(customer)
            items.append(code)
            times.append(moment)
    return Interactions.from_rows(users, items, times)


def online_retail_orders(path: str | Path) -> list[OrderRecord]:
    """One order per sale invoice of a known customer, in order of first appearance."""
    customers: dict[str, str] = {}
    placed: dict[str, str] = {}
    totals: dict[str, float] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return []
        columns = {name.strip(): index for index, name in enumerate(header)}
        missing = {"InvoiceNo", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"} - set(columns)
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        i_invoice, i_quantity = columns["InvoiceNo"], columns["Quantity"]
        i_date, i_price, i_customer = (
            columns["InvoiceDate"],
            columns["UnitPrice"],
            columns["CustomerID"],
        )
        for row in reader:
            customer = row[i_customer].strip()
            invoice = row[i_invoice].strip()
            if not customer or not invoice or invoice[0] in "Cc":
                continue
            try:
                quantity = float(row[i_quantity])
                price = float(row[i_price])
            except ValueError:
                continue
            if quantity <= 0 or price <= 0:
                continue
            if invoice in totals:
                totals[invoice] += quantity * price
                placed[invoice] = min(placed[invoice], row[i_date].strip())
            else:
                customers[invoice] = customer
                placed[invoice] = row[i_date].strip()
                totals[invoice] = quantity * price
    moments: dict[str, datetime] = {}
    orders: list[OrderRecord] = []
    for invoice, total in totals.items():
        text = placed[invoice]
        moment = moments.get(text)
        if moment is None:
            moment = datetime.fromtimestamp(parse_time(text), UTC)
            moments[text] = moment
        orders.append(OrderRecord(customers[invoice], moment, round(total, 2)))
    return orders
