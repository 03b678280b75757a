"""users.wechat_token_version: logout revokes a user's mini program bearer tokens.

Added to a table that already holds rows: NOT NULL with a server default of 0, so
existing users keep every token they hold until their next logout.

Revision ID: 3c1d2e4f5a6b
Revises: 65985e41765f
Create Date: 2026-12-02 01:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "3c1d2e4f5a6b"
down_revision = "65985e41765f"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("wechat_token_version", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("wechat_token_version")
