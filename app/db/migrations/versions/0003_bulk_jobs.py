"""Bulk jobs: a job's request, status, counts, lease and checkpoint (docs/jobs.md).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 12:23:27.912941
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bulk_jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column(
            "operation",
            sa.Enum(
                "CREATE",
                "UPDATE",
                "UPSERT",
                "DELETE",
                name="bulk_operation",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "file_format",
            sa.Enum(
                "JSONL",
                "CSV",
                name="bulk_file_format",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "CREATED",
                "RUNNING",
                "COMPLETED",
                "CANCELING",
                "CANCELED",
                "FAILED",
                "EXPIRED",
                name="bulk_job_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("succeeded", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("results_bytes", sa.BigInteger(), nullable=False),
        sa.Column("failed_bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("bulk_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_bulk_jobs_owner_created", ["owner", "created_at"], unique=False)
        batch_op.create_index("ix_bulk_jobs_status_created", ["status", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bulk_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_bulk_jobs_status_created")
        batch_op.drop_index("ix_bulk_jobs_owner_created")

    op.drop_table("bulk_jobs")
