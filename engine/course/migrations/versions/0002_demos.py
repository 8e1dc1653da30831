"""The instructor's demos: a link into the app that every learner's sidebar offers.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "demos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("link", sa.String(length=4000), nullable=False),
        sa.Column("note", sa.String(length=300), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_demos")),
    )
    op.create_index(op.f("ix_demos_at"), "demos", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_demos_at"), table_name="demos")
    op.drop_table("demos")
