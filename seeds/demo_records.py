"""Demo consent (告知同意): most families have signed the form for 建档与评估, fewer for sharing and
photos; a few withdrew their photo consent. Deterministic by child id (the random stream is untouched,
so the other demo steps come out the same)."""

import datetime as dt

from sqlalchemy import insert, select

from choices import ConsentMethod, ConsentScope
from models import Child, ChildGuardian, Consent, Guardian
from services import clock, consent


def seed_records(session, rng) -> None:
    today = clock.today()
    rows = []
    links = session.execute(
        select(Child.id, Child.birth_date, Guardian.id, Guardian.name)
        .join(ChildGuardian, ChildGuardian.child_id == Child.id)
        .join(Guardian, Guardian.id == ChildGuardian.guardian_id)
        .where(ChildGuardian.is_primary.is_(True))
        .order_by(Child.id)
    )
    for child_id, birth_date, guardian_id, guardian_name in links:
        share = child_id % 10
        given_on = max(today - dt.timedelta(days=30 + child_id % 300), birth_date)
        scopes = []
        if share < 8:
            scopes.append(ConsentScope.FILING)
        if share < 5:
            scopes.append(ConsentScope.SHARING)
        if share < 6:
            scopes.append(ConsentScope.PHOTOS)
        for scope in scopes:
            withdrawn = scope is ConsentScope.PHOTOS and child_id % 23 == 0
            rows.append(
                {
                    "child_id": child_id,
                    "scope": scope.value,
                    "guardian_id": guardian_id,
                    "given_by": guardian_name,
                    "given_on": given_on,
                    "method": ConsentMethod.WRITTEN.value if child_id % 7 else ConsentMethod.ORAL.value,
                    "witness": None if child_id % 7 else "村委会工作人员（演示）",
                    "withdrawn_on": min(given_on + dt.timedelta(days=20), today) if withdrawn else None,
                    "withdrawal_note": "监护人电话提出不再同意照片使用（演示）" if withdrawn else None,
                }
            )
    for start in range(0, len(rows), 5000):
        session.execute(insert(Consent), rows[start : start + 5000])
    consent.refresh(session.connection())  # Child.filing_consent: the rows were written without the ORM
