"""Who may use the admin API: `admin` does everything, `support` reads and works the queue."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from stepcoin.auth.dependencies import CurrentUser, require_roles

STAFF_ROLES = ("admin", "support")


@dataclass(frozen=True, slots=True)
class Staff:
    id: uuid.UUID
    role: str


def _as_staff(user: CurrentUser) -> Staff:
    return Staff(id=uuid.UUID(str(user.id)), role=user.role)


async def _any_staff(user: Annotated[CurrentUser, Depends(require_roles(*STAFF_ROLES))]) -> Staff:
    return _as_staff(user)


async def _admin_only(user: Annotated[CurrentUser, Depends(require_roles("admin"))]) -> Staff:
    return _as_staff(user)


StaffDep = Annotated[Staff, Depends(_any_staff)]
"""Admin or support: reading, the review queue, deactivating plain users."""

AdminDep = Annotated[Staff, Depends(_admin_only)]
"""Admin only: money, settings, roles."""
