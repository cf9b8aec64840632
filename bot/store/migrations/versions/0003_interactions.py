"""Interactions: views, clicks, cart additions and purchases for recommendations.

Revision ID: 0003_interactions
Revises: 0002_telegram
Create Date: 2025-06-15
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_interactions"
down_revision: str | None = "0002_telegram"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "interaction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_interaction_customer_id_customer")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name=op.f("fk_interaction_product_id_product")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interaction")),
    )
    op.create_index(
        "ix_interaction_customer_created",
        "interaction",
        ["customer_id", "created_at"],
        unique=False,
    )
    op.create_index("ix_interaction_created_at", "interaction", ["created_at"], unique=False)
    op.create_index(op.f("ix_interaction_product_id"), "interaction", ["product_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_interaction_product_id"), table_name="interaction")
    op.drop_index("ix_interaction_created_at", table_name="interaction")
    op.drop_index("ix_interaction_customer_created", table_name="interaction")
    op.drop_table("interaction")
