"""Server defaults for what the mixins add, and a name for the account's foreign key.

What ``WeChatUserMixin`` adds now lands on user tables that already hold rows, so each of
its NOT NULL columns has a server default: ``wechat_reauthorization_required`` false,
``created_at`` CURRENT_TIMESTAMP. The account table's defaults move to the server as well
(``nickname`` and ``scope`` ''; the timestamps CURRENT_TIMESTAMP), and its foreign key gets
the name ``fk_wechat_accounts_user_id_users``, so that a later revision can drop it on every
database (SQLite's batch mode refuses to drop an unnamed constraint).

Revision ID: 8f2b6c0d9e41
Revises: 3c1d2e4f5a6b
Create Date: 2026-12-03 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "8f2b6c0d9e41"
down_revision = "3c1d2e4f5a6b"
branch_labels = None
depends_on = None

FOREIGN_KEY = "fk_wechat_accounts_user_id_users"
# SQLite keeps no name for the unnamed key: batch mode reflects it under this one.
NAMING_CONVENTION = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
NOW = sa.text("CURRENT_TIMESTAMP")


def _foreign_key_name() -> str:
    """The key's name as the database has it (PostgreSQL and MariaDB named it themselves)."""
    [key] = sa.inspect(op.get_bind()).get_foreign_keys("wechat_accounts")
    return key["name"] or FOREIGN_KEY


def upgrade() -> None:
    old_key = _foreign_key_name()
    with op.batch_alter_table("users") as batch:
        batch.alter_column(
            "wechat_reauthorization_required",
            existing_type=sa.Boolean(),
            existing_nullable=False,
            server_default=sa.false(),
        )
        batch.alter_column(
            "created_at", existing_type=sa.DateTime(timezone=True), existing_nullable=False, server_default=NOW
        )
    with op.batch_alter_table("wechat_accounts", naming_convention=NAMING_CONVENTION) as batch:
        batch.alter_column("nickname", existing_type=sa.String(length=255), existing_nullable=False, server_default="")
        batch.alter_column("scope", existing_type=sa.String(length=64), existing_nullable=False, server_default="")
        for column in ("created_at", "updated_at"):
            batch.alter_column(
                column, existing_type=sa.DateTime(timezone=True), existing_nullable=False, server_default=NOW
            )
        batch.drop_constraint(old_key, type_="foreignkey")
        batch.create_foreign_key(FOREIGN_KEY, "users", ["user_id"], ["id"], ondelete="CASCADE")


def downgrade() -> None:
    # The foreign key keeps its name: harmless to the revisions before, and SQLite cannot unname it.
    with op.batch_alter_table("wechat_accounts") as batch:
        for column in ("created_at", "updated_at"):
            batch.alter_column(
                column, existing_type=sa.DateTime(timezone=True), existing_nullable=False, server_default=None
            )
        batch.alter_column("scope", existing_type=sa.String(length=64), existing_nullable=False, server_default=None)
        batch.alter_column(
            "nickname", existing_type=sa.String(length=255), existing_nullable=False, server_default=None
        )
    with op.batch_alter_table("users") as batch:
        batch.alter_column(
            "created_at", existing_type=sa.DateTime(timezone=True), existing_nullable=False, server_default=None
        )
        batch.alter_column(
            "wechat_reauthorization_required", existing_type=sa.Boolean(), existing_nullable=False, server_default=None
        )
