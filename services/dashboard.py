"""Figures of the 工作台, computed for a village scope."""

from sqlalchemy import func, select

from models import Category, Child, Village, child_category, db
from services.scoping import scope


def _active_children(village_ids):
    return scope(select(Child.id).where(Child.archived_at.is_(None)), Child, village_ids)


def register_counts(village_ids) -> dict:
    """Active children in scope: total, by category, by level, by village."""
    active = _active_children(village_ids).subquery()
    total = db.session.scalar(select(func.count()).select_from(active))
    by_category = db.session.execute(
        select(Category.name, func.count(child_category.c.child_id))
        .select_from(Category)
        .join(child_category, child_category.c.category_id == Category.id)
        .where(child_category.c.child_id.in_(select(active.c.id)))
        .group_by(Category.id, Category.name, Category.sort_order)
        .order_by(Category.sort_order)
    ).all()
    by_level = dict(
        db.session.execute(
            select(Child.current_level, func.count())
            .where(Child.id.in_(select(active.c.id)))
            .group_by(Child.current_level)
        ).all()
    )
    by_village = db.session.execute(
        scope(
            select(Village.name, func.count(Child.id))
            .join(Child, (Child.village_id == Village.id) & Child.archived_at.is_(None))
            .group_by(Village.id, Village.name, Village.sort_order)
            .order_by(Village.sort_order),
            Village,
            village_ids,
        )
    ).all()
    return {
        "total": total,
        "by_category": [tuple(r) for r in by_category],
        "by_level": by_level,
        "by_village": [tuple(r) for r in by_village],
    }
