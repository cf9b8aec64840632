"""A deterministic demo shop: catalogue, customers and orders in every state.

Everything here was written for this project. Dates are relative to the `today` passed in, so
the demo is coherent whenever it is loaded: shipped parcels are due in the future, recent
deliveries are inside the return window, old ones outside it. Everything else is fixed; the
same `today` always gives the same shop.
"""

from __future__ import annotations

import random
import string
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy.orm import Mapped
from sqlmodel import Session, col, delete, func, select, update

from bot.store import channel_state
from bot.store.campaigns import Campaign, CampaignDelivery
from bot.store.channel_state import Consent
from bot.store.errors import DemoDataConflict
from bot.store.interactions import Interaction
from bot.store.models import (
    ChannelIdentity,
    Conversation,
    Customer,
    Order,
    OrderItem,
    OrderStatus,
    Product,
    ProductVariant,
    ReturnRequest,
    ReturnStatus,
    Shipment,
)

SEED = 104501
PHOTO_SKU_PREFIX = "PH-"  # extra products of `bot demo-data --photos` (see bot/demo_photos.py)
FIRST_ORDER_NUMBER = 104501
CURRENCY = "EUR"


class CatalogueEntry(NamedTuple):
    sku: str
    category: str
    brand: str
    title: str
    description: str
    material: str
    colour: str
    price: str
    sizes: tuple[str, ...]


APPAREL = ("XS", "S", "M", "L", "XL")
SHIRT = ("S", "M", "L", "XL", "XXL")
WAIST = ("28", "30", "32", "34", "36")
SHOES_SMALL = ("36", "37", "38", "39", "40", "41")
SHOES_LARGE = ("40", "41", "42", "43", "44", "45")
TWO_FIT = ("S/M", "L/XL")

# fmt: off
CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry("DR-001", "dresses", "Maison Lumen", "Linen Wrap Dress", "A relaxed wrap dress in washed linen that ties at the waist. Midi length with short flutter sleeves, made for warm city days.", "linen", "sage green", "89.90", APPAREL),  # noqa: E501
    CatalogueEntry("DR-002", "dresses", "Maison Lumen", "Silk Slip Dress", "Bias-cut slip dress with adjustable straps and a soft cowl neckline. Layer it over a tee by day or wear it alone in the evening.", "silk", "champagne", "149.00", ("XS", "S", "M", "L")),  # noqa: E501
    CatalogueEntry("DR-003", "dresses", "Soft Harbour", "Jersey T-Shirt Dress", "An easy knee-length T-shirt dress in heavyweight organic cotton jersey, with side pockets and dropped shoulders.", "organic cotton", "heather grey", "39.90", APPAREL),  # noqa: E501
    CatalogueEntry("DR-004", "dresses", "Maison Lumen", "Floral Tea Dress", "A 1940s-inspired tea dress with a small floral print, puff sleeves and covered buttons all the way down the front.", "viscose", "navy floral", "79.00", APPAREL),  # noqa: E501
    CatalogueEntry("DR-005", "dresses", "Kettle & Pine", "Corduroy Pinafore Dress", "Fine-wale corduroy pinafore with a square neck and two patch pockets. Wear it over a roll-neck when it gets cold.", "cotton corduroy", "rust", "69.00", ("XS", "S", "M", "L")),  # noqa: E501
    CatalogueEntry("DR-006", "dresses", "Soft Harbour", "Ribbed Knit Midi Dress", "A figure-skimming midi dress in a stretchy rib knit with a crew neck and long sleeves.", "viscose blend", "black", "59.90", APPAREL),  # noqa: E501
    CatalogueEntry("DR-007", "dresses", "Maison Lumen", "Broderie Sundress", "Cotton broderie anglaise sundress with a smocked back and a tiered skirt. Fully lined.", "cotton", "white", "95.00", ("XS", "S", "M")),  # noqa: E501
    CatalogueEntry("SH-001", "shirts", "Kettle & Pine", "Oxford Button-Down Shirt", "A classic Oxford cloth shirt with a button-down collar and a box pleat at the back. It gets softer with every wash.", "cotton", "light blue", "49.90", SHIRT),  # noqa: E501
    CatalogueEntry("SH-002", "shirts", "Kettle & Pine", "Flannel Check Shirt", "Brushed cotton flannel in a green and navy check, with two chest pockets. Warm enough to wear as a light layer.", "brushed cotton", "green check", "54.90", SHIRT),  # noqa: E501
    CatalogueEntry("SH-003", "shirts", "Soft Harbour", "Organic Cotton Crew Tee", "An everyday crew-neck T-shirt in 180 g organic cotton. Pre-shrunk, so it keeps its shape.", "organic cotton", "white", "19.90", ("XS", "S", "M", "L", "XL", "XXL")),  # noqa: E501
    CatalogueEntry("SH-004", "shirts", "Maison Lumen", "Silk Blouse", "A fluid silk blouse with a relaxed fit, a concealed placket and long buttoned cuffs.", "silk", "ivory", "119.00", ("XS", "S", "M", "L")),  # noqa: E501
    CatalogueEntry("SH-005", "shirts", "Kettle & Pine", "Linen Camp-Collar Shirt", "Short-sleeved linen shirt with an open camp collar and a straight hem, cut to be worn untucked.", "linen", "sand", "59.00", SHIRT),  # noqa: E501
    CatalogueEntry("SH-006", "shirts", "Nordlicht", "Merino Base Layer Top", "A lightweight merino long-sleeve top that keeps you warm on the trail and does not hold odours.", "merino wool", "charcoal", "69.90", APPAREL),  # noqa: E501
    CatalogueEntry("SH-007", "shirts", "Soft Harbour", "Striped Breton Top", "Boat-neck Breton top in thick cotton with navy stripes and three-quarter sleeves.", "cotton", "ecru and navy stripe", "34.90", APPAREL),  # noqa: E501
    CatalogueEntry("TR-001", "trousers", "Ridgeway Denim", "Straight-Leg Selvedge Jeans", "Mid-rise straight jeans in rigid 13 oz selvedge denim that moulds to you over time.", "cotton denim", "indigo", "99.00", WAIST),  # noqa: E501
    CatalogueEntry("TR-002", "trousers", "Ridgeway Denim", "Slim Stretch Jeans", "Slim-fit jeans with 2% elastane for comfort, a classic five-pocket cut and a mid-blue wash.", "cotton and elastane", "mid blue", "79.00", WAIST),  # noqa: E501
    CatalogueEntry("TR-003", "trousers", "Ridgeway Denim", "Wide-Leg High-Rise Jeans", "High-rise jeans with a wide leg that falls straight from the hip, cut to ankle length.", "cotton denim", "light wash", "89.00", ("24", "26", "28", "30", "32")),  # noqa: E501
    CatalogueEntry("TR-004", "trousers", "Kettle & Pine", "Stretch Chino Trousers", "Tapered chinos in cotton twill with a touch of stretch: smart enough for the office, easy at the weekend.", "cotton twill", "khaki", "64.90", WAIST),  # noqa: E501
    CatalogueEntry("TR-005", "trousers", "Maison Lumen", "Pleated Wool Trousers", "High-waisted trousers with double front pleats and a pressed crease, in a fine wool flannel.", "wool", "grey melange", "129.00", ("34", "36", "38", "40", "42")),  # noqa: E501
    CatalogueEntry("TR-006", "trousers", "Nordlicht", "Hiking Trousers", "Light hiking trousers with zipped pockets, articulated knees and a water-repellent finish.", "recycled polyamide", "olive", "84.90", WAIST),  # noqa: E501
    CatalogueEntry("TR-007", "trousers", "Soft Harbour", "Linen Drawstring Trousers", "Loose linen trousers with an elasticated drawstring waist, cool in the summer heat.", "linen", "black", "54.90", APPAREL),  # noqa: E501
    CatalogueEntry("JK-001", "jackets", "Nordlicht", "Waterproof Rain Shell", "A packable rain jacket with taped seams, an adjustable hood and underarm zips. Rated to a 10,000 mm water column.", "recycled polyester", "yellow", "139.00", APPAREL),  # noqa: E501
    CatalogueEntry("JK-002", "jackets", "Nordlicht", "Down Puffer Jacket", "A warm, light puffer filled with responsibly sourced 650-fill down. It packs into its own pocket.", "nylon with down filling", "black", "179.00", APPAREL),  # noqa: E501
    CatalogueEntry("JK-003", "jackets", "Ridgeway Denim", "Denim Trucker Jacket", "The classic trucker jacket in mid-weight denim, with flap chest pockets and a slightly cropped cut.", "cotton denim", "stone wash", "94.00", APPAREL),  # noqa: E501
    CatalogueEntry("JK-004", "jackets", "Kettle & Pine", "Waxed Cotton Field Jacket", "A field jacket in waxed cotton with a corduroy collar and four bellows pockets. Re-wax it once a year and it lasts for decades.", "waxed cotton", "olive", "199.00", APPAREL),  # noqa: E501
    CatalogueEntry("JK-005", "jackets", "Maison Lumen", "Wool Blend Overcoat", "A single-breasted overcoat in wool and cashmere with notch lapels, falling just below the knee.", "wool and cashmere", "camel", "249.00", APPAREL),  # noqa: E501
    CatalogueEntry("JK-006", "jackets", "Kettle & Pine", "Quilted Liner Jacket", "Diamond-quilted jacket with a snap front and a cord collar. Wear it alone or under a shell.", "polyester", "navy", "89.00", SHIRT),  # noqa: E501
    CatalogueEntry("JK-007", "jackets", "Soft Harbour", "Recycled Fleece Zip Jacket", "A soft midweight fleece made from recycled bottles, with a full zip and zipped hand pockets.", "recycled polyester fleece", "forest green", "59.90", APPAREL),  # noqa: E501
    CatalogueEntry("SN-001", "shoes", "Duna", "Leather Court Sneakers", "Minimal low-top sneakers in full-grain leather on a stitched rubber cupsole.", "leather", "white", "119.00", ("37", "38", "39", "40", "41", "42")),  # noqa: E501
    CatalogueEntry("SN-002", "shoes", "Duna", "Suede Chelsea Boots", "Pull-on Chelsea boots in water-resistant suede with elastic gussets and a stacked heel.", "suede", "tobacco brown", "149.00", SHOES_LARGE),  # noqa: E501
    CatalogueEntry("SN-003", "shoes", "Nordlicht", "Trail Running Shoes", "Grippy trail runners with a rock plate, a 6 mm drop and a breathable mesh upper.", "synthetic mesh", "slate blue", "129.00", SHOES_LARGE),  # noqa: E501
    CatalogueEntry("SN-004", "shoes", "Duna", "Canvas Espadrilles", "Hand-stitched canvas espadrilles on a braided jute sole.", "cotton canvas and jute", "navy", "39.90", SHOES_SMALL),  # noqa: E501
    CatalogueEntry("SN-005", "shoes", "Duna", "Penny Loafers", "Penny loafers in polished calf leather with a leather sole and a rubber heel.", "leather", "burgundy", "139.00", SHOES_LARGE),  # noqa: E501
    CatalogueEntry("SN-006", "shoes", "Soft Harbour", "Canvas High-Top Sneakers", "Vulcanised canvas high-tops with a cushioned insole.", "cotton canvas", "black", "49.90", ("36", "38", "40", "42", "44")),  # noqa: E501
    CatalogueEntry("SN-007", "shoes", "Nordlicht", "Insulated Winter Boots", "Lace-up winter boots with a waterproof membrane, a warm lining and a lugged sole rated to -20 °C.", "leather and textile", "dark brown", "169.00", SHOES_LARGE),  # noqa: E501
    CatalogueEntry("KN-001", "knitwear", "Nordlicht", "Merino Crew Jumper", "A fine-gauge merino jumper that layers easily under a jacket. Machine washable on the wool cycle.", "merino wool", "navy", "79.00", APPAREL),  # noqa: E501
    CatalogueEntry("KN-002", "knitwear", "Soft Harbour", "Cashmere V-Neck Sweater", "A soft two-ply cashmere V-neck with ribbed cuffs and hem.", "cashmere", "oatmeal", "159.00", APPAREL),  # noqa: E501
    CatalogueEntry("KN-003", "knitwear", "Nordlicht", "Fisherman Roll-Neck", "A chunky cable-knit roll-neck in undyed wool, knitted tight to keep the wind out.", "wool", "ecru", "119.00", ("S", "M", "L", "XL")),  # noqa: E501
    CatalogueEntry("KN-004", "knitwear", "Maison Lumen", "Mohair Cardigan", "A cropped, fluffy cardigan in a mohair blend with oversized horn buttons.", "mohair blend", "lilac", "99.00", ("XS", "S", "M", "L")),  # noqa: E501
    CatalogueEntry("KN-005", "knitwear", "Soft Harbour", "Cotton Knit Polo", "A short-sleeved knitted polo in breathable cotton with a three-button placket.", "cotton", "terracotta", "49.90", SHIRT),  # noqa: E501
    CatalogueEntry("KN-006", "knitwear", "Kettle & Pine", "Lambswool Cardigan", "A classic five-button lambswool cardigan with two patch pockets.", "lambswool", "bottle green", "89.00", SHIRT),  # noqa: E501
    CatalogueEntry("AC-001", "accessories", "Kettle & Pine", "Vegetable-Tanned Leather Belt", "A 35 mm belt cut from vegetable-tanned leather with a solid brass buckle. Sizes are the length in centimetres.", "leather", "dark brown", "45.00", ("80", "90", "100", "110")),  # noqa: E501
    CatalogueEntry("AC-002", "accessories", "Duna", "Pebbled Leather Tote", "A roomy unlined tote in soft pebbled leather with an inside zip pocket. The large size fits a 15-inch laptop.", "leather", "cognac", "189.00", ("Medium", "Large")),  # noqa: E501
    CatalogueEntry("AC-003", "accessories", "Nordlicht", "Ribbed Merino Beanie", "A double-layer ribbed beanie in merino wool.", "merino wool", "mustard", "29.90", TWO_FIT),  # noqa: E501
    CatalogueEntry("AC-004", "accessories", "Soft Harbour", "Brushed Wool Scarf", "An oversized scarf in soft brushed wool with fringed ends.", "wool", "grey check", "49.00", ("180 cm", "220 cm")),  # noqa: E501
    CatalogueEntry("AC-005", "accessories", "Nordlicht", "Touchscreen Gloves", "Merino-lined gloves with conductive fingertips, so you can use your phone outdoors.", "merino wool and polyamide", "black", "34.90", ("S", "M", "L")),  # noqa: E501
    CatalogueEntry("AC-006", "accessories", "Duna", "Waxed Canvas Backpack", "A backpack in waxed canvas with leather straps and a padded laptop sleeve.", "waxed canvas", "olive", "119.00", ("15 L", "22 L")),  # noqa: E501
    CatalogueEntry("AC-007", "accessories", "Kettle & Pine", "Six-Panel Cotton Cap", "A six-panel cap in washed cotton twill with a leather strap at the back.", "cotton twill", "stone", "27.00", TWO_FIT),  # noqa: E501
)
# fmt: on

# Products sold out in every size, so "out of stock" answers can be demonstrated.
SOLD_OUT = frozenset({"DR-002", "JK-004", "SN-007"})


class DemoCustomer(NamedTuple):
    first_name: str
    last_name: str
    email: str
    line1: str
    line2: str | None
    city: str
    postcode: str
    country: str


CUSTOMERS: tuple[DemoCustomer, ...] = (
    DemoCustomer(
        "Anna",
        "Schmidt",
        "anna.schmidt@example.com",
        "Invalidenstraße 12",
        None,
        "Berlin",
        "10115",
        "DE",
    ),
    DemoCustomer(
        "Lukas",
        "Weber",
        "lukas.weber@example.com",
        "Leopoldstraße 45",
        "3. OG",
        "München",
        "80331",
        "DE",
    ),
    DemoCustomer(
        "Sophie",
        "Müller",
        "sophie.mueller@example.com",
        "Ehrenstraße 8",
        None,
        "Köln",
        "50667",
        "DE",
    ),
    DemoCustomer(
        "Daan",
        "de Vries",
        "daan.devries@example.com",
        "Prinsengracht 263",
        None,
        "Amsterdam",
        "1012 AB",
        "NL",
    ),
    DemoCustomer(
        "Emma",
        "Jansen",
        "emma.jansen@example.com",
        "Witte de Withstraat 31",
        None,
        "Rotterdam",
        "3011 AD",
        "NL",
    ),
    DemoCustomer(
        "Oliver",
        "Bennett",
        "oliver.bennett@example.com",
        "15 St John Street",
        "Flat 2",
        "London",
        "EC1A 1BB",
        "GB",
    ),
    DemoCustomer(
        "Charlotte",
        "Hughes",
        "charlotte.hughes@example.com",
        "22 Oldham Street",
        None,
        "Manchester",
        "M1 1AE",
        "GB",
    ),
    DemoCustomer(
        "Camille",
        "Dubois",
        "camille.dubois@example.com",
        "14 rue de Bretagne",
        None,
        "Paris",
        "75003",
        "FR",
    ),
    DemoCustomer(
        "Louis", "Martin", "louis.martin@example.com", "7 rue Mercière", None, "Lyon", "69002", "FR"
    ),
    DemoCustomer(
        "Lucía",
        "García",
        "lucia.garcia@example.com",
        "Calle de Santiago 9",
        "2º B",
        "Madrid",
        "28013",
        "ES",
    ),
    DemoCustomer(
        "Javier",
        "Fernández",
        "javier.fernandez@example.com",
        "Carrer de Ferran 21",
        None,
        "Barcelona",
        "08002",
        "ES",
    ),
    DemoCustomer(
        "Emily",
        "Johnson",
        "emily.johnson@example.com",
        "350 W 31st Street",
        "Apt 4B",
        "New York, NY",
        "10001",
        "US",
    ),
    DemoCustomer(
        "Michael",
        "Brown",
        "michael.brown@example.com",
        "1120 Howard Street",
        None,
        "San Francisco, CA",
        "94103",
        "US",
    ),
    DemoCustomer(
        "Lena", "Gruber", "lena.gruber@example.com", "Kärntner Straße 5", None, "Wien", "1010", "AT"
    ),
    DemoCustomer(
        "Giulia",
        "Rossi",
        "giulia.rossi@example.com",
        "Via Torino 40",
        None,
        "Milano",
        "20121",
        "IT",
    ),
)

# One order goes to another address than the customer's (a present), so the postcode check
# must use the order's shipping postcode.
GIFT_ADDRESS = DemoCustomer(
    "Hannah", "Schmidt", "", "Kastanienallee 3", None, "Berlin", "10435", "DE"
)

CARRIERS = {
    "DE": ("DHL", "00340434", 12),
    "AT": ("DPD", "0150", 10),
    "NL": ("PostNL", "3SKPLN", 9),
    "GB": ("Royal Mail", "RM", 9),
    "FR": ("Colissimo", "6A", 11),
    "ES": ("Correos", "PQ", 12),
    "IT": ("GLS", "ZZ", 9),
    "US": ("UPS", "1Z4E7W59", 10),
}


# How many days ago orders of each delivered kind arrived; returns are opened 1-4 days after
# delivery, so those kinds start late enough for that to lie in the past.
DELIVERED_DAYS_AGO = {
    "delivered_recent": (2, 20),
    "delivered_recent_open_return": (6, 20),
    "delivered_long_ago": (40, 150),
    "returned": (8, 25),
}


class Kind(NamedTuple):
    status: OrderStatus
    label: str
    orders: int


# Every state the assistant must handle; `label` separates the two kinds of delivered order.
PLAN: tuple[Kind, ...] = (
    Kind(OrderStatus.placed, "placed", 6),
    Kind(OrderStatus.paid, "paid", 6),
    Kind(OrderStatus.shipped, "shipped", 7),
    Kind(OrderStatus.delivered, "delivered_recent", 6),
    Kind(OrderStatus.delivered, "delivered_recent_open_return", 2),
    Kind(OrderStatus.delivered, "delivered_long_ago", 6),
    Kind(OrderStatus.cancelled, "cancelled", 5),
    Kind(OrderStatus.returned, "returned", 4),
)

RETURN_REASONS = (
    "Too small",
    "Too big",
    "The colour is different from the photo",
    "Changed my mind",
    "Arrived damaged",
)


@dataclass(frozen=True)
class DemoSummary:
    customers: int
    products: int
    variants: int
    sold_out_products: int
    orders: int
    orders_by_status: dict[str, int]
    shipments: int
    returns: int


def write_demo_shop(session: Session, today: date) -> DemoSummary:
    """Replace the demo shop in the database with a fresh one dated around `today`.

    Refuses (DemoDataConflict) when the shop tables hold anything that is not demo data.
    Does not commit; `session_scope` does.
    """
    _clear_previous_demo(session)
    rng = random.Random(SEED)
    customers = _write_customers(session)
    variants = _write_catalogue(session, rng)
    _write_orders(session, rng, today, customers, variants)
    _write_marketing_consent(session, customers, today)
    session.flush()
    return summarise(session)


def summarise(session: Session) -> DemoSummary:
    def count(model: type) -> int:
        return session.exec(select(func.count()).select_from(model)).one()

    statuses = Counter(session.exec(select(Order.status)).all())
    in_stock = select(ProductVariant.product_id).where(ProductVariant.stock > 0)
    sold_out = session.exec(
        select(func.count()).select_from(Product).where(col(Product.id).not_in(in_stock))
    ).one()
    return DemoSummary(
        customers=count(Customer),
        products=count(Product),
        variants=count(ProductVariant),
        sold_out_products=sold_out,
        orders=count(Order),
        orders_by_status={status.value: statuses.get(status, 0) for status in OrderStatus},
        shipments=count(Shipment),
        returns=count(ReturnRequest),
    )


def _clear_previous_demo(session: Session) -> None:
    demo_numbers = [str(FIRST_ORDER_NUMBER + i) for i in range(sum(kind.orders for kind in PLAN))]
    foreign = {
        "orders": _count_outside(session, col(Order.number), demo_numbers),
        "products": _count_outside(
            session, col(Product.sku), [e.sku for e in CATALOGUE], PHOTO_SKU_PREFIX
        ),
        "customers": _count_outside(session, col(Customer.email), [c.email for c in CUSTOMERS]),
    }
    if any(foreign.values()):
        found = ", ".join(f"{n} {what}" for what, n in foreign.items() if n)
        raise DemoDataConflict(
            f"The database holds shop data that is not the demo shop ({found}); "
            "use an empty database for the demo."
        )
    # Conversations and channel identities survive a reload; only their link goes.
    session.exec(update(Conversation).values(customer_id=None))
    session.exec(update(ChannelIdentity).values(customer_id=None))
    session.exec(update(Consent).values(customer_id=None))
    session.exec(delete(CampaignDelivery))  # campaigns to demo customers go with them
    session.exec(delete(Campaign))
    session.exec(delete(Interaction))  # events of demo customers on demo products
    for model in (ReturnRequest, Shipment, OrderItem, Order, ProductVariant, Product, Customer):
        session.exec(delete(model))
    session.flush()


# Demo web-chat identities: `?session=demo-customer-NN-northwind` in the chat page address opens
# customer NN's chat. Most opted in to marketing; one opted out again; one Telegram chat blocked
# the bot.
OPTED_IN = 8


def _write_marketing_consent(session: Session, customers: list[Customer], today: date) -> None:
    moment = datetime.combine(today - timedelta(days=30), time(12), tzinfo=UTC)
    for index, customer in enumerate(customers[: OPTED_IN + 2]):
        external_id = f"demo-customer-{index + 1:02d}-northwind"
        identity = channel_state.get_or_create_identity(session, "web", external_id)
        identity.customer_id = customer.id
        identity.unreachable_at = None
        session.add(identity)
        session.flush()
        channel_state.record_consent(session, "web", external_id, True, "web:demo", now=moment)
        if index == OPTED_IN:
            later = moment + timedelta(days=3)
            channel_state.record_consent(session, "web", external_id, False, "web:demo", now=later)
        if index == OPTED_IN + 1:  # a Telegram chat that blocked the bot after opting in
            chat = channel_state.get_or_create_identity(session, "telegram", "100000001")
            chat.customer_id = customer.id
            session.add(chat)
            session.flush()
            channel_state.record_consent(
                session, "telegram", "100000001", True, "telegram:demo", now=moment
            )
            channel_state.mark_unreachable(session, "telegram", "100000001", now=moment)
            channel_state.record_consent(session, "web", external_id, False, "web:demo", now=moment)


def _count_outside(
    session: Session, column: Mapped[str], allowed: list[str], prefix: str | None = None
) -> int:
    """Rows not in `allowed` (nor starting with `prefix`: the photo demo's extra products)."""
    query = select(func.count()).where(column.not_in(allowed))
    if prefix:
        query = query.where(column.not_like(f"{prefix}%"))
    return session.exec(query).one()


def _write_customers(session: Session) -> list[Customer]:
    created = datetime(2023, 1, 1, tzinfo=UTC)
    customers = [
        Customer(
            email=c.email,
            first_name=c.first_name,
            last_name=c.last_name,
            postcode=c.postcode,
            country=c.country,
            created_at=created + timedelta(days=23 * i),
        )
        for i, c in enumerate(CUSTOMERS)
    ]
    session.add_all(customers)
    session.flush()
    return customers


def _write_catalogue(session: Session, rng: random.Random) -> list[tuple[Product, ProductVariant]]:
    products = [
        Product(
            sku=e.sku,
            title=e.title,
            description=e.description,
            category=e.category,
            brand=e.brand,
            material=e.material,
            colour=e.colour,
            price=Decimal(e.price),
            currency=CURRENCY,
        )
        for e in CATALOGUE
    ]
    session.add_all(products)
    session.flush()
    variants: list[tuple[Product, ProductVariant]] = []
    for entry, product in zip(CATALOGUE, products, strict=True):
        assert product.id is not None
        stocks = _stock_levels(rng, len(entry.sizes), sold_out=entry.sku in SOLD_OUT)
        for size, stock in zip(entry.sizes, stocks, strict=True):
            variant = ProductVariant(
                product_id=product.id,
                sku=f"{entry.sku}-{size.replace(' ', '').replace('/', '')}",
                size=size,
                colour=entry.colour,
                stock=stock,
            )
            variants.append((product, variant))
    session.add_all([variant for _, variant in variants])
    session.flush()
    return variants


def _stock_levels(rng: random.Random, sizes: int, sold_out: bool) -> list[int]:
    if sold_out:
        return [0] * sizes
    levels = [0 if rng.random() < 0.2 else rng.randint(1, 24) for _ in range(sizes)]
    if not any(levels):
        levels[sizes // 2] = rng.randint(1, 6)
    return levels


def _write_orders(
    session: Session,
    rng: random.Random,
    today: date,
    customers: list[Customer],
    variants: list[tuple[Product, ProductVariant]],
) -> None:
    plan = [kind for kind in PLAN for _ in range(kind.orders)]
    rng.shuffle(plan)
    gift_index = 3
    for index, kind in enumerate(plan):
        customer_index = rng.randrange(len(CUSTOMERS))
        if index == gift_index:
            customer_index = 0  # Anna Schmidt sends a present to her sister Hannah
        customer = customers[customer_index]
        address = GIFT_ADDRESS if index == gift_index else CUSTOMERS[customer_index]
        recipient = (
            f"{address.first_name} {address.last_name}"
            if index == gift_index
            else f"{customer.first_name} {customer.last_name}"
        )
        lines = [rng.choice(variants) for _ in range(rng.choice((1, 1, 1, 2, 2, 3)))]
        quantities = [rng.choice((1, 1, 1, 2)) for _ in lines]
        times = _timeline(rng, today, kind.label)
        order = Order(
            number=str(FIRST_ORDER_NUMBER + index),
            customer_id=customer.id,
            status=kind.status,
            email=customer.email,
            shipping_name=recipient,
            shipping_line1=address.line1,
            shipping_line2=address.line2,
            shipping_city=address.city,
            shipping_postcode=address.postcode,
            shipping_country=address.country,
            total=sum(
                (p.price * q for (p, _), q in zip(lines, quantities, strict=True)), Decimal(0)
            ),
            currency=CURRENCY,
            placed_at=times.placed,
            paid_at=times.paid,
            shipped_at=times.shipped,
            delivered_at=times.delivered,
            cancelled_at=times.cancelled,
            updated_at=times.last_change,
        )
        session.add(order)
        session.flush()
        assert order.id is not None
        items = [
            OrderItem(
                order_id=order.id,
                variant_id=variant.id or 0,
                title=product.title,
                size=variant.size,
                quantity=quantity,
                unit_price=product.price,
            )
            for (product, variant), quantity in zip(lines, quantities, strict=True)
        ]
        session.add_all(items)
        session.flush()
        if times.shipped is not None:
            session.add(_shipment(rng, order, times))
        if kind.label in ("returned", "delivered_recent_open_return"):
            _write_returns(session, rng, order, items, kind.label, times)


class Timeline(NamedTuple):
    placed: datetime
    paid: datetime | None
    shipped: datetime | None
    expected: date | None
    delivered: datetime | None
    cancelled: datetime | None
    last_change: datetime


def _at(day: date, rng: random.Random) -> datetime:
    return datetime.combine(day, time(rng.randint(7, 21), rng.randrange(60)), tzinfo=UTC)


def _timeline(rng: random.Random, today: date, label: str) -> Timeline:
    """Dates for one order; every event lies before `today`, expected deliveries after."""

    def days_ago(low: int, high: int) -> date:
        return today - timedelta(days=rng.randint(low, high))

    delivered: datetime | None = None
    shipped: datetime | None = None
    expected: date | None = None
    cancelled: datetime | None = None
    if label == "shipped":
        shipped = _at(days_ago(1, 3), rng)
        expected = today + timedelta(days=rng.randint(1, 4))
        placed = shipped - timedelta(days=rng.randint(1, 2), hours=rng.randint(1, 9))
    elif label.startswith("delivered") or label == "returned":
        window = DELIVERED_DAYS_AGO[label]
        delivered = _at(days_ago(*window), rng)
        shipped = delivered - timedelta(days=rng.randint(1, 3), hours=rng.randint(1, 6))
        expected = delivered.date()
        placed = shipped - timedelta(days=rng.randint(1, 2), hours=rng.randint(1, 9))
    elif label == "cancelled":
        placed = _at(days_ago(4, 30), rng)
        cancelled = placed + timedelta(hours=rng.randint(1, 30))
    else:  # placed / paid: recent, not yet shipped
        placed = _at(days_ago(1, 2), rng)
    paid = None
    if label != "placed" and not (label == "cancelled" and rng.random() < 0.5):
        paid = placed + timedelta(minutes=rng.randint(2, 90))
    events = [t for t in (placed, paid, shipped, delivered, cancelled) if t is not None]
    return Timeline(placed, paid, shipped, expected, delivered, cancelled, max(events))


def _shipment(rng: random.Random, order: Order, times: Timeline) -> Shipment:
    assert order.id is not None and times.shipped is not None
    carrier, prefix, digits = CARRIERS[order.shipping_country]
    tracking = prefix + "".join(rng.choice(string.digits) for _ in range(digits))
    if carrier == "Royal Mail":
        tracking += "GB"
    return Shipment(
        order_id=order.id,
        carrier=carrier,
        tracking_number=tracking,
        shipped_at=times.shipped,
        expected_delivery=times.expected,
        delivered_at=times.delivered,
    )


def _write_returns(
    session: Session,
    rng: random.Random,
    order: Order,
    items: list[OrderItem],
    label: str,
    times: Timeline,
) -> None:
    """Returned orders: every item refunded. Open returns: the first item, not yet back."""
    assert order.id is not None and times.delivered is not None
    returned = items if label == "returned" else items[:1]
    status = ReturnStatus.refunded if label == "returned" else ReturnStatus.requested
    for item in returned:
        count = session.exec(select(func.count()).select_from(ReturnRequest)).one()
        session.add(
            ReturnRequest(
                number=f"RT-{count + 1:06d}",
                order_id=order.id,
                order_item_id=item.id,
                reason=rng.choice(RETURN_REASONS),
                status=status,
                created_at=times.delivered + timedelta(days=rng.randint(1, 4)),
            )
        )
        session.flush()
