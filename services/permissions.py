"""Who may do what: one table of areas × roles (SPEC.md "Who uses it").

READ lets a role open an area's pages; WRITE also lets it create, edit and delete there.
Which villages' rows a role sees is a separate matter: User.village_scope().
"""

from choices import Role

READ = "read"
WRITE = "write"

A, C, S, D, W, F, INSP = (
    Role.ADMIN,
    Role.CLERK,
    Role.SUPERVISOR,
    Role.DIRECTOR,
    Role.SOCIAL,
    Role.FINANCE,
    Role.INSPECTOR,
)


def _grant(write=(), read=()):
    table = {role: READ for role in read}
    table.update({role: WRITE for role in write})
    return table


AREAS: dict[str, dict[Role, str]] = {
    "dashboard": _grant(read=(A, C, S, D, W, F, INSP)),
    # 今日 and the phone's offline pages; what each item of the offline queue writes is checked
    # against the area it belongs to (visits, activities).
    "field": _grant(read=(A, C, S, D, W)),
    "villages": _grant(write=(A, C), read=(S, D, W, INSP)),
    "staff": _grant(write=(A, C), read=(S, D, W, INSP)),
    "users": _grant(write=(A,)),
    "children": _grant(write=(A, C, D), read=(S, W, INSP)),
    "guardians": _grant(write=(A, C, D), read=(S, W, INSP)),
    "archive": _grant(write=(A, C), read=(D, INSP)),
    "audit": _grant(read=(A, INSP)),
    "rules": _grant(write=(A,), read=(C, S, W, INSP)),
    "settings": _grant(write=(A,)),
    "assessments": _grant(write=(A, C, S, D, W), read=(INSP,)),
    "services": _grant(write=(A, C, S, D, W), read=(INSP,)),
    "map": _grant(read=(A, C, S, D, W, INSP)),
    "visits": _grant(write=(A, C, S, D), read=(W, INSP)),
    "mandatory_reports": _grant(write=(A, C, S, D, W), read=(INSP,)),
    "alerts": _grant(write=(A, C, S, D), read=(W, INSP)),
    "cases": _grant(write=(A, C, S, W), read=(D, INSP)),
    "activities": _grant(write=(A, C, S, D), read=(W, INSP)),
    "pairing": _grant(write=(A, C, S, D), read=(W, INSP)),
    "funds": _grant(write=(A, F), read=(C, INSP)),
    "reports": _grant(read=(A, C, S, D, W, INSP)),
    "import": _grant(write=(A, C)),
    "dossier": _grant(read=(A, C, S, D, W, INSP)),
    # The plan's own process (work plan 四, 五): views/process.py.
    "leading_group": _grant(write=(A, C), read=(S, D, W, INSP)),
    "inspections": _grant(write=(A, C, S), read=(D, W, INSP)),
    # Rectifications: the town's roles manage them; the owner (a director, a social worker) reports
    # progress and evidence on their own (services/inspections.py decides who may do which step).
    "rectifications": _grant(write=(A, C, S, D, W), read=(INSP,)),
    "feedback": _grant(write=(A, C, S, D, W), read=(INSP,)),
    "publicity": _grant(write=(A, C, S, D), read=(W, INSP)),
    "case_studies": _grant(write=(A, C, S, W), read=(D, INSP)),
    "acceptance": _grant(read=(A, C, INSP)),
    "transfers": _grant(write=(A, C, D), read=(S, W, INSP)),
    "consent": _grant(write=(A, C, S, D, W), read=(INSP,)),
    "retention": _grant(write=(A,)),
    # The attachment view itself; which attachments a role reaches follows their owners' areas.
    "attachments": _grant(read=(A, C, S, D, W, F, INSP)),
}

# Roles that may reveal a full ID number (each reveal is logged); others only ever see it masked.
ID_REVEAL_ROLES = {A, C, S, D, W}
# Roles that approve assessments.
REVIEWER_ROLES = {A, C, S}
# Roles that record inspections, assign rectifications and sign them off (复核).
RECTIFICATION_MANAGERS = {A, C, S}
# Roles that approve a typical case (典型案例) for use outside the system.
CASE_STUDY_APPROVERS = {A, S}


def access(role: str | None, area: str) -> str | None:
    if role is None:
        return None
    try:
        role = Role(role)
    except ValueError:
        return None
    return AREAS.get(area, {}).get(role)


def can_read(role, area) -> bool:
    return access(role, area) in (READ, WRITE)


def can_write(role, area) -> bool:
    return access(role, area) == WRITE


def may_reveal_id(role) -> bool:
    return role in {r.value for r in ID_REVEAL_ROLES}


def roles_allowed(area: str, *, write: bool) -> list[Role]:
    """The roles that may read (or write) an area, in the order of the role table."""
    grants = AREAS.get(area, {})
    wanted = (WRITE,) if write else (READ, WRITE)
    return [role for role in Role if grants.get(role) in wanted]
