"""The caller's place in the queue over HTTP: `GET /easel/v1/queue` and `POST /easel/v1/queue/cancel`.

`/sdapi/v1/interrupt` keeps AUTOMATIC1111's meaning (stop the caller's running job); these routes let a
client see and drop the jobs it has waiting, which A1111's API has no word for.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from api.http import JsonErrors, Logins
from core.throttle import LoginThrottle
from core.users import UserBook
from studio import JobState, Studio

QUEUE_PREFIX = "/easel/v1/queue"


def build_router(studio: Studio, users: UserBook | None, throttle: LoginThrottle | None = None) -> APIRouter:
    """The queue routes over `studio`; with users (non-empty), they need HTTP Basic auth like /sdapi/v1."""
    router = APIRouter(prefix=QUEUE_PREFIX, tags=["Queue"], route_class=JsonErrors)
    who = Logins(users, throttle)

    @router.get("")
    def queue(user: str = Depends(who)) -> dict[str, Any]:
        """`{"waiting": n, "limit": m, "running": bool}`: the caller's jobs not started yet (a job group counts
        once), how many one person may have waiting (null: no limit for the caller), and whether one of the
        caller's jobs is running."""
        latest = studio.jobs.latest_job(user)
        limit = None if studio.roles.is_admin(user) else studio.jobs.max_queued_per_user
        return {
            "waiting": studio.jobs.waiting_count(user),
            "limit": limit,
            "running": latest is not None and latest.state is JobState.RUNNING,
        }

    @router.post("/cancel")
    def cancel(user: str = Depends(who)) -> dict[str, int]:
        """Cancel every job of the caller that is waiting (job groups included); the running one goes on (stop
        it with /sdapi/v1/interrupt). Answers `{"cancelled": n}`."""
        return {"cancelled": studio.jobs.cancel_queued(user)}

    return router
