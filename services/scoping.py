"""Village scoping, written once. Every read of village-owned data goes through ``scope``.

A scope is ``None`` (every village) or a list of village ids (possibly empty: nothing).
Models say how they belong to a village with ``village_clause(ids)`` (see models.py).
"""

from sqlalchemy import false


def is_scoped(model) -> bool:
    return hasattr(model, "village_clause")


def scope_clause(model, village_ids, *, per_row=False):
    """The SQL condition limiting ``model`` to ``village_ids``; None when nothing is to be limited.

    ``per_row``: the same rows, checked one by one (``village_clause_per_row``, where the model has
    it), for a query whose other filters already pick few rows.
    """
    if village_ids is None or not is_scoped(model):
        return None
    if not village_ids:
        return false()
    if per_row and hasattr(model, "village_clause_per_row"):
        return model.village_clause_per_row(list(village_ids))
    return model.village_clause(list(village_ids))


def scope(query, model, village_ids, *, per_row=False):
    """Limit a legacy Query or a 2.0 Select over ``model`` to the villages in scope."""
    clause = scope_clause(model, village_ids, per_row=per_row)
    if clause is None:
        return query
    return query.where(clause) if hasattr(query, "where") else query.filter(clause)


def in_scope(obj, village_ids) -> bool:
    """Whether an already loaded object lies within the scope (for objects not read through a query)."""
    if village_ids is None or obj is None or not is_scoped(type(obj)):
        return True
    from models import db

    model = type(obj)
    pk = model.__mapper__.primary_key[0]
    stmt = db.select(pk).where(pk == getattr(obj, pk.key))
    return db.session.execute(scope(stmt, model, village_ids)).first() is not None
