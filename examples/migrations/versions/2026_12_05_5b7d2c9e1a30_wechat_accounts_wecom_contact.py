"""wechat_accounts: the email and gender a WeCom member agreed to share.

Two nullable columns on a table that already holds rows: ``email`` (Text: sealed with
WECHAT_TOKEN_KEYS when set) and ``gender`` (WeCom's string). Existing accounts have none.

Revision ID: 5b7d2c9e1a30
Revises: 14035e84e10f
Create Date: 2026-12-05 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "5b7d2c9e1a30"
down_revision = "14035e84e10f"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("wechat_accounts") as batch:
        batch.add_column(sa.Column("email", sa.Text(), nullable=True))
        batch.add_column(sa.Column("gender", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("wechat_accounts") as batch:
        batch.drop_column("gender")
        batch.drop_column("email")
