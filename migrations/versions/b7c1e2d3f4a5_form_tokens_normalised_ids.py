"""one-time form tokens; ID numbers and phones stored with ASCII digits

Revision ID: b7c1e2d3f4a5
Revises: c01c978d1054
Create Date: 2026-11-29 11:30:00

Before this revision a form accepted an ID number or phone typed with full-width or other
non-ASCII digits and stored it as typed, which hid it from the duplicate check, the last-4 search
and the duplicate finder. Stored values are normalised here (NFKC, every decimal digit ASCII,
upper-case X, no spaces); a normalised ID number that another row already holds is left as it is
(the duplicate finder lists both).
"""

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "b7c1e2d3f4a5"
down_revision = "c49782f6365b"
branch_labels = None
depends_on = None

INVISIBLE = set("\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _digits(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return "".join(
        str(unicodedata.decimal(ch)) if not ch.isascii() and unicodedata.category(ch) == "Nd" else ch
        for ch in text
        if ch not in INVISIBLE
    )


def _id_number(value: str) -> str:
    return "".join(_digits(value).split()).upper()


def _phone(value: str) -> str:
    return "".join(_digits(value).split())


def _normalise(conn, table: str, column: str, normalise, *, unique: bool = False, last4: bool = False):
    rows = conn.execute(sa.text(f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL")).all()
    taken = {value for _, value in rows} if unique else set()
    for row_id, value in rows:
        new = normalise(value)
        if new == value:
            continue
        if unique and new in taken:
            print(f"form_tokens migration: {table}.{column} of row {row_id} duplicates another row; left as typed")
            continue
        taken.add(new)
        values = {"v": new, "id": row_id}
        extra = ", id_last4 = :l4" if last4 else ""
        if last4:
            values["l4"] = new[-4:]
        conn.execute(sa.text(f"UPDATE {table} SET {column} = :v{extra} WHERE id = :id"), values)


def upgrade():
    op.create_table(
        "form_token",
        sa.Column("token", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("endpoint", sa.String(length=100), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.Column("record_id", sa.String(length=40), nullable=True),
        sa.Column("result_url", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("token"),
    )
    with op.batch_alter_table("form_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_form_token_claimed_at"), ["claimed_at"], unique=False)

    conn = op.get_bind()
    _normalise(conn, "child", "id_number", _id_number, unique=True, last4=True)
    _normalise(conn, "guardian", "id_number", _id_number, unique=True)
    _normalise(conn, "guardian", "phone", _phone)
    _normalise(conn, "staff", "phone", _phone)
    _normalise(conn, "mandatory_report", "reporter_phone", _phone)


def downgrade():
    with op.batch_alter_table("form_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_form_token_claimed_at"))
    op.drop_table("form_token")
