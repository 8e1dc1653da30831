"""Learner progress: learners, visits, answers, runs.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "learners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("passphrase_hash", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resume_chapter", sa.String(length=100), nullable=True),
        sa.Column("resume_section", sa.String(length=100), nullable=True),
        sa.Column("resume_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_learners")),
        sa.UniqueConstraint("key", name=op.f("uq_learners_key")),
    )
    for table, extra in (
        (
            "visits",
            [
                sa.Column("chapter", sa.String(100), nullable=False),
                sa.Column("section", sa.String(100), nullable=False),
            ],
        ),
        (
            "answers",
            [
                sa.Column("chapter", sa.String(100), nullable=False),
                sa.Column("quiz_id", sa.String(100), nullable=False),
                sa.Column("choice", sa.String(500), nullable=False),
                sa.Column("correct", sa.Boolean(), nullable=False),
            ],
        ),
        (
            "runs",
            [
                sa.Column("chapter", sa.String(100), nullable=True),
                sa.Column("kind", sa.String(100), nullable=False),
                sa.Column("summary", sa.Text(), nullable=False),
            ],
        ),
    ):
        op.create_table(
            table,
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("learner_id", sa.Integer(), nullable=False),
            *extra,
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint(
                ["learner_id"], ["learners.id"], name=op.f(f"fk_{table}_learner_id_learners"), ondelete="CASCADE"
            ),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        )
        op.create_index(f"ix_{table}_learner_at", table, ["learner_id", "at"], unique=False)


def downgrade() -> None:
    for table in ("runs", "answers", "visits"):
        op.drop_index(f"ix_{table}_learner_at", table_name=table)
        op.drop_table(table)
    op.drop_table("learners")
