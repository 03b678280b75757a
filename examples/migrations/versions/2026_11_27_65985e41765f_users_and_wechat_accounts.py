"""Users, their WeChat accounts, and flask-wechat's shared store.

The columns are those of WeChatUserMixin and WeChatAccountMixin (flask_wechat.models)
and of flask_wechat.store.store_table. Timestamps are plain ``DateTime(timezone=True)``:
the models' UTCDateTime stores exactly that, and a migration must not import app code
that may change after it was written.

Revision ID: 65985e41765f
Revises:
Create Date: 2026-11-27 02:15:27
"""

import sqlalchemy as sa
from alembic import op

revision = "65985e41765f"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wechat_unionid", sa.String(length=64), nullable=True),
        sa.Column("wechat_reauthorization_required", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        # Named, so that a later revision can drop or change it on every database.
        sa.UniqueConstraint("wechat_unionid", name="uq_users_wechat_unionid"),
    )
    op.create_table(
        "wechat_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("appid", sa.String(length=32), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("unionid", sa.String(length=64), nullable=True),
        sa.Column("nickname", sa.String(length=255), nullable=False),
        sa.Column("avatar_url", sa.Text(), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("access_token", sa.Text(), nullable=True),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("session_key", sa.Text(), nullable=True),
        sa.Column("access_token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refresh_token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("profile_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("appid", "openid", name="uq_wechat_accounts_appid_openid"),
        # MariaDB/MySQL: nicknames carry 4-byte emoji.
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    op.create_index("ix_wechat_accounts_unionid", "wechat_accounts", ["unionid"])
    op.create_index("ix_wechat_accounts_user_id", "wechat_accounts", ["user_id"])
    op.create_table(
        "wechat_store",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_wechat_store_expires_at", "wechat_store", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_wechat_store_expires_at", table_name="wechat_store")
    op.drop_table("wechat_store")
    # Dropping the table drops its indexes; MariaDB refuses to drop the foreign key's index first.
    op.drop_table("wechat_accounts")
    op.drop_table("users")
