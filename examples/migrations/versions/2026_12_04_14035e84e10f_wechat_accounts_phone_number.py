"""wechat_accounts: the phone number a mini program user shared.

Four nullable columns on a table that already holds rows: ``phone_number`` and
``pure_phone_number`` (Text: sealed with WECHAT_TOKEN_KEYS when set, so longer than the
number), ``phone_country_code`` and ``phone_updated_at``. Existing accounts have none.

Revision ID: 14035e84e10f
Revises: 8f2b6c0d9e41
Create Date: 2026-12-04 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "14035e84e10f"
down_revision = "8f2b6c0d9e41"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("wechat_accounts") as batch:
        batch.add_column(sa.Column("phone_number", sa.Text(), nullable=True))
        batch.add_column(sa.Column("pure_phone_number", sa.Text(), nullable=True))
        batch.add_column(sa.Column("phone_country_code", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("phone_updated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("wechat_accounts") as batch:
        batch.drop_column("phone_updated_at")
        batch.drop_column("phone_country_code")
        batch.drop_column("pure_phone_number")
        batch.drop_column("phone_number")
