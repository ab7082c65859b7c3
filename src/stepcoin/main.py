"""create_app(): the FastAPI application with its routers, middleware and error handlers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.security.utils import get_authorization_scheme_param
from starlette.types import ASGIApp, Receive, Scope, Send

from stepcoin import __version__
from stepcoin.accounts.router import router as accounts_router
from stepcoin.achievements.router import admin_router as achievements_admin_router
from stepcoin.achievements.router import router as achievements_router
from stepcoin.admin.router import router as admin_router
from stepcoin.admin.settings_router import router as settings_router
from stepcoin.auth.router import router as auth_router
from stepcoin.auth.tokens import InvalidToken, decode_access_token
from stepcoin.config import Settings, get_settings
from stepcoin.console import install_console
from stepcoin.db import Database
from stepcoin.errors import install_error_handlers
from stepcoin.health.router import router as health_router
from stepcoin.leaderboards.router import router as leaderboards_router
from stepcoin.mail import transport as mail_transport
from stepcoin.observability import RequestContextMiddleware
from stepcoin.openapi import install_openapi
from stepcoin.shop.admin_router import router as shop_admin_router
from stepcoin.shop.router import router as shop_router
from stepcoin.shop.webhooks import router as webhooks_router
from stepcoin.steps.router import admin_router as review_router
from stepcoin.steps.router import router as steps_router
from stepcoin.users.email_pages import router as email_pages_router
from stepcoin.users.email_router import router as email_links_router
from stepcoin.users.router import profile_answer
from stepcoin.users.router import router as users_router
from stepcoin.validation import InputGuard
from stepcoin.wallet.router import router as wallet_router
from stepcoin.wallet.router import transactions_answer, wallet_answer
from stepcoin.worker import open_jobs, start_worker_task

logger = logging.getLogger("stepcoin")

Answer = Callable[[Any, uuid.UUID, bytes], Awaitable[bytes | None]]


@dataclass(frozen=True, slots=True)
class _HotRoute:
    """What scope["route"] needs for the metrics label: the same template FastAPI's route has."""

    path: str


class HotRoutes:
    """The hottest GETs answered without FastAPI's routing and dependency solving (issue 13:
    ~25% of a `/v1/me` request), innermost of the middleware so request ids, the access log,
    metrics and the input guard apply exactly as to any route.

    Only a success is answered here: a valid bearer token (the same cached verification as
    `auth.dependencies.current_claims`) and a 200 body from the very function the FastAPI route
    calls, whose query checks `users.is_active`. Anything else (no or bad token, a deactivated
    account, a query string the route must validate, a database error) falls through, untouched,
    to the FastAPI route, which answers as it always did (problem+json, codes, 401/422/500).
    The routes stay declared in their routers: OpenAPI, docs and the fallback are unchanged.
    """

    def __init__(self, app: ASGIApp, *, settings: Settings, answers: dict[str, Answer]) -> None:
        self.app = app
        self.settings = settings
        self.answers = answers
        self.routes = {path: _HotRoute(path) for path in answers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            answer = self.answers.get(scope["path"])
            if answer is not None:
                body = await self._answer(scope, answer)
                if body is not None:
                    scope["route"] = self.routes[scope["path"]]
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": [
                                (b"content-length", str(len(body)).encode("latin-1")),
                                (b"content-type", b"application/json"),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, answer: Answer) -> bytes | None:
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":  # the first one, as Starlette's Headers.get
                authorization = value.decode("latin-1")
                break
        scheme, token = get_authorization_scheme_param(authorization)
        if not token or scheme.lower() != "bearer":
            return None
        try:
            claims = decode_access_token(self.settings, token)
        except InvalidToken:
            return None
        try:
            pool = await scope["app"].state.database.read_pool()
            async with pool.acquire() as driver:
                return await answer(driver, claims.user_id, scope.get("query_string", b""))
        except Exception:  # the FastAPI route answers (and logs) it
            logger.debug("hot route fell through after an error", exc_info=True)
            return None


def create_app(settings: Settings | None = None, *, run_worker: bool | None = None) -> FastAPI:
    settings = settings or get_settings()
    if not settings.database_url:
        raise RuntimeError(
            "DATABASE_URL is not set: use `stepcoin serve`, which starts the embedded PostgreSQL"
        )
    settings.signing_secret()  # no secret and no usable data directory: refuse to start
    with_worker = settings.run_worker_in_serve if run_worker is None else run_worker
    mail_transport.announce(settings)  # where mails go; loud in production without SMTP

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assert settings.database_url
        database = Database(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_pool_overflow,
            pgbouncer=settings.database_pgbouncer,
        )
        app.state.database = database
        try:
            if with_worker:
                async with open_jobs(database) as jobs:
                    app.state.jobs = jobs
                    worker = start_worker_task(jobs)
                    try:
                        yield
                    finally:
                        worker.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await worker
            else:
                yield
        finally:
            await database.dispose()

    app = FastAPI(
        title="StepCoin API",
        version=__version__,
        description="Walk-to-earn backend: steps in, coins out, rewards from a Shopify store.",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.state.settings = settings
    app.add_middleware(
        HotRoutes,
        settings=settings,
        answers={
            "/v1/me": profile_answer,
            "/v1/wallet": wallet_answer,
            "/v1/wallet/transactions": transactions_answer,
        },
    )  # innermost: after the guard, the body limit, the request id and the metrics
    app.add_middleware(InputGuard)  # inside the next one: after the body-size limit
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        access_log=settings.access_log,
    )
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(auth_router)
    app.include_router(email_links_router)
    app.include_router(email_pages_router)
    app.include_router(users_router)
    app.include_router(accounts_router)
    app.include_router(steps_router)
    app.include_router(review_router)
    app.include_router(shop_router)
    app.include_router(shop_admin_router)
    app.include_router(webhooks_router)
    app.include_router(wallet_router)
    app.include_router(admin_router)
    app.include_router(settings_router)
    app.include_router(achievements_router)
    app.include_router(achievements_admin_router)
    app.include_router(leaderboards_router)
    install_console(app)
    install_openapi(app)
    return app
