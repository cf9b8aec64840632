"""Marketing campaigns: campaigns and one delivery row per recipient.

Revision ID: 0005_campaigns
Revises: 0004_support
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_campaigns"
down_revision: str | None = "0004_support"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaign",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("segment", sa.JSON(), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("quiet_start", sa.Integer(), nullable=True),
        sa.Column("quiet_end", sa.Integer(), nullable=True),
        sa.Column("send_after_handoff", sa.Boolean(), nullable=False),
        sa.Column("attribution_days", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("audience_size", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["staff_user.id"], name=op.f("fk_campaign_created_by_staff_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign")),
    )
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaign_status"), ["status"], unique=False)

    op.create_table(
        "campaign_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("variant", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("clicked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaign.id"], name=op.f("fk_campaign_delivery_campaign_id_campaign")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_campaign_delivery_customer_id_customer")
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["message.id"], name=op.f("fk_campaign_delivery_message_id_message")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_delivery")),
        sa.UniqueConstraint(
            "campaign_id", "customer_id", name=op.f("uq_campaign_delivery_campaign_id_customer_id")
        ),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_campaign_delivery_idempotency_key")),
    )
    with op.batch_alter_table("campaign_delivery", schema=None) as batch_op:
        batch_op.create_index(
            "ix_campaign_delivery_campaign_status", ["campaign_id", "status"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_campaign_delivery_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_campaign_delivery_sent_at"), ["sent_at"], unique=False)
        batch_op.create_index(
            "ix_campaign_delivery_status_due", ["status", "next_attempt_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("campaign_delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_delivery_status_due")
        batch_op.drop_index(batch_op.f("ix_campaign_delivery_sent_at"))
        batch_op.drop_index(batch_op.f("ix_campaign_delivery_customer_id"))
        batch_op.drop_index("ix_campaign_delivery_campaign_status")

    op.drop_table("campaign_delivery")
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_status"))

    op.drop_table("campaign")
