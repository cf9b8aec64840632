"""Initial schema: catalogue, customers, orders, returns, conversations, verification.

Written from the models in bot/store/models.py with portable column types; the test
tests/test_store_schema.py checks that the migrated schema and the models agree.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=False),
        sa.Column("last_name", sa.String(length=100), nullable=False),
        sa.Column("postcode", sa.String(length=20), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer")),
        sa.UniqueConstraint("email", name=op.f("uq_customer_email")),
    )
    op.create_table(
        "product",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column("brand", sa.String(length=100), nullable=False),
        sa.Column("material", sa.String(length=100), nullable=False),
        sa.Column("colour", sa.String(length=50), nullable=False),
        sa.Column("price", sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("image_path", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product")),
        sa.UniqueConstraint("sku", name=op.f("uq_product_sku")),
    )
    op.create_index(op.f("ix_product_category"), "product", ["category"], unique=False)

    op.create_table(
        "verification_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=200), nullable=False),
        sa.Column("order_number", sa.String(length=64), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_attempt")),
    )
    op.create_index(
        op.f("ix_verification_attempt_conversation_created"),
        "verification_attempt",
        ["conversation_id", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_verification_attempt_order_created"),
        "verification_attempt",
        ["order_number", "created_at"],
        unique=False,
    )

    op.create_table(
        "channel_identity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_channel_identity_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_identity")),
        sa.UniqueConstraint(
            "channel", "external_id", name=op.f("uq_channel_identity_channel_external_id")
        ),
    )
    op.create_index(
        op.f("ix_channel_identity_customer_id"), "channel_identity", ["customer_id"], unique=False
    )

    op.create_table(
        "conversation",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_conversation_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation")),
        sa.UniqueConstraint(
            "channel", "external_id", name=op.f("uq_conversation_channel_external_id")
        ),
    )
    op.create_index(
        op.f("ix_conversation_customer_id"), "conversation", ["customer_id"], unique=False
    )

    op.create_table(
        "product_variant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=48), nullable=False),
        sa.Column("size", sa.String(length=20), nullable=False),
        sa.Column("colour", sa.String(length=50), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.CheckConstraint("stock >= 0", name=op.f("ck_product_variant_stock_not_negative")),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name=op.f("fk_product_variant_product_id_product")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_variant")),
        sa.UniqueConstraint("sku", name=op.f("uq_product_variant_sku")),
    )
    op.create_index(
        op.f("ix_product_variant_product_id"), "product_variant", ["product_id"], unique=False
    )

    op.create_table(
        "shop_order",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=6), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("shipping_name", sa.String(length=200), nullable=False),
        sa.Column("shipping_line1", sa.String(length=200), nullable=False),
        sa.Column("shipping_line2", sa.String(length=200), nullable=True),
        sa.Column("shipping_city", sa.String(length=100), nullable=False),
        sa.Column("shipping_postcode", sa.String(length=20), nullable=False),
        sa.Column("shipping_country", sa.String(length=2), nullable=False),
        sa.Column("total", sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_shop_order_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_order")),
        sa.UniqueConstraint("number", name=op.f("uq_shop_order_number")),
    )
    op.create_index(op.f("ix_shop_order_customer_id"), "shop_order", ["customer_id"], unique=False)
    op.create_index(op.f("ix_shop_order_status"), "shop_order", ["status"], unique=False)

    op.create_table(
        "message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=200), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("client_message_id", sa.String(length=128), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("body", sa.JSON(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("reply_to", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_message_conversation_id_conversation"),
        ),
        sa.ForeignKeyConstraint(
            ["reply_to"], ["message.id"], name=op.f("fk_message_reply_to_message")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message")),
        sa.UniqueConstraint(
            "conversation_id",
            "client_message_id",
            name=op.f("uq_message_conversation_id_client_message_id"),
        ),
    )
    op.create_index(
        op.f("ix_message_conversation_created"),
        "message",
        ["conversation_id", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_message_direction_status"), "message", ["direction", "status"], unique=False
    )
    op.create_index(op.f("ix_message_reply_to"), "message", ["reply_to"], unique=False)

    op.create_table(
        "order_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("variant_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("size", sa.String(length=20), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=10, scale=2), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_order_item_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["shop_order.id"], name=op.f("fk_order_item_order_id_shop_order")
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"],
            ["product_variant.id"],
            name=op.f("fk_order_item_variant_id_product_variant"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_item")),
    )
    op.create_index(op.f("ix_order_item_order_id"), "order_item", ["order_id"], unique=False)
    op.create_index(op.f("ix_order_item_variant_id"), "order_item", ["variant_id"], unique=False)

    op.create_table(
        "shipment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("carrier", sa.String(length=50), nullable=False),
        sa.Column("tracking_number", sa.String(length=64), nullable=False),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expected_delivery", sa.Date(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["shop_order.id"], name=op.f("fk_shipment_order_id_shop_order")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipment")),
    )
    op.create_index(op.f("ix_shipment_order_id"), "shipment", ["order_id"], unique=False)

    op.create_table(
        "return_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=16), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("order_item_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["shop_order.id"], name=op.f("fk_return_request_order_id_shop_order")
        ),
        sa.ForeignKeyConstraint(
            ["order_item_id"],
            ["order_item.id"],
            name=op.f("fk_return_request_order_item_id_order_item"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_return_request")),
        sa.UniqueConstraint("number", name=op.f("uq_return_request_number")),
    )
    op.create_index(
        op.f("ix_return_request_order_id"), "return_request", ["order_id"], unique=False
    )
    op.create_index(
        op.f("ix_return_request_order_item_id"), "return_request", ["order_item_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_return_request_order_item_id"), table_name="return_request")
    op.drop_index(op.f("ix_return_request_order_id"), table_name="return_request")

    op.drop_table("return_request")
    op.drop_index(op.f("ix_shipment_order_id"), table_name="shipment")

    op.drop_table("shipment")
    op.drop_index(op.f("ix_order_item_variant_id"), table_name="order_item")
    op.drop_index(op.f("ix_order_item_order_id"), table_name="order_item")

    op.drop_table("order_item")
    op.drop_index(op.f("ix_message_reply_to"), table_name="message")
    op.drop_index(op.f("ix_message_direction_status"), table_name="message")
    op.drop_index(op.f("ix_message_conversation_created"), table_name="message")

    op.drop_table("message")
    op.drop_index(op.f("ix_shop_order_status"), table_name="shop_order")
    op.drop_index(op.f("ix_shop_order_customer_id"), table_name="shop_order")

    op.drop_table("shop_order")
    op.drop_index(op.f("ix_product_variant_product_id"), table_name="product_variant")

    op.drop_table("product_variant")
    op.drop_index(op.f("ix_conversation_customer_id"), table_name="conversation")

    op.drop_table("conversation")
    op.drop_index(op.f("ix_channel_identity_customer_id"), table_name="channel_identity")

    op.drop_table("channel_identity")
    op.drop_index(op.f("ix_verification_attempt_order_created"), table_name="verification_attempt")
    op.drop_index(
        op.f("ix_verification_attempt_conversation_created"), table_name="verification_attempt"
    )

    op.drop_table("verification_attempt")
    op.drop_index(op.f("ix_product_category"), table_name="product")

    op.drop_table("product")
    op.drop_table("customer")
