"""Human support: staff accounts, handoff tickets, canned responses, notes, audit log.

Revision ID: 0004_support
Revises: 0003_interactions
Create Date: 2025-06-20
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_support"
down_revision: str | None = "0003_interactions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_user")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_user_email")),
    )
    op.create_table(
        "handoff_ticket",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=200), nullable=False),
        sa.Column("open_key", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("assigned_to", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("csat", sa.Integer(), nullable=True),
        sa.Column("csat_asked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("csat_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "csat IS NULL OR (csat >= 1 AND csat <= 5)", name=op.f("ck_handoff_ticket_csat_range")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_handoff_ticket_conversation_id_conversation"),
        ),
        sa.ForeignKeyConstraint(
            ["assigned_to"],
            ["staff_user.id"],
            name=op.f("fk_handoff_ticket_assigned_to_staff_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_ticket")),
        sa.UniqueConstraint("open_key", name=op.f("uq_handoff_ticket_open_key")),
    )
    op.create_index(
        op.f("ix_handoff_ticket_conversation_id"), "handoff_ticket", ["conversation_id"]
    )
    op.create_index(op.f("ix_handoff_ticket_assigned_to"), "handoff_ticket", ["assigned_to"])
    op.create_index(
        op.f("ix_handoff_ticket_state_created"), "handoff_ticket", ["state", "created_at"]
    )
    op.create_table(
        "canned_response",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["staff_user.id"], name=op.f("fk_canned_response_updated_by_staff_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_response")),
        sa.UniqueConstraint("title", name=op.f("uq_canned_response_title")),
    )
    op.create_table(
        "ticket_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["handoff_ticket.id"],
            name=op.f("fk_ticket_note_ticket_id_handoff_ticket"),
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["staff_user.id"], name=op.f("fk_ticket_note_author_id_staff_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_note")),
    )
    op.create_index(op.f("ix_ticket_note_ticket_id"), "ticket_note", ["ticket_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_user.id"], name=op.f("fk_audit_log_staff_id_staff_user")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["handoff_ticket.id"], name=op.f("fk_audit_log_ticket_id_handoff_ticket")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_staff_id"), "audit_log", ["staff_id"])
    op.create_index(op.f("ix_audit_log_ticket_id"), "audit_log", ["ticket_id"])
    op.create_index(op.f("ix_audit_log_action_created"), "audit_log", ["action", "created_at"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("ticket_note")
    op.drop_table("canned_response")
    op.drop_table("handoff_ticket")
    op.drop_table("staff_user")
