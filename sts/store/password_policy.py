"""Which password policy each administrator's password was set under (``users.password_policy_length``).

Only a hash of a password is kept, so whether it meets the policy can be known only when it is set: the admin core
records the minimum length it enforced then, and ``sts check-config`` names administrators whose password
predates the policy (NULL) or was set under a weaker one.
"""

from __future__ import annotations

from sqlalchemy import Engine, select, update

from sts.store.schema import users
from sts.store.transactions import reading, writing


def record_policy(engine: Engine, name: str, min_length: int | None) -> None:
    """Note the minimum length ``name``'s new password was checked against (None: not checked, not an admin)."""
    with writing(engine) as conn:
        conn.execute(update(users).where(users.c.name == name).values(password_policy_length=min_length))


def admin_policies(engine: Engine) -> list[tuple[str, int | None]]:
    """Every enabled administrator and the recorded policy length of their password, by name."""
    query = (select(users.c.name, users.c.password_policy_length)
             .where(users.c.admin.is_(True), users.c.disabled.is_(False)).order_by(users.c.name))
    with reading(engine) as conn:
        return [(str(row[0]), row[1]) for row in conn.execute(query)]
