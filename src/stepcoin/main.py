"""create_app(): the FastAPI application with its routers, middleware and error handlers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from stepcoin import __version__
from stepcoin.accounts.router import router as accounts_router
from stepcoin.achievements.router import admin_router as achievements_admin_router
from stepcoin.achievements.router import router as achievements_router
from stepcoin.admin.router import router as admin_router
from stepcoin.admin.settings_router import router as settings_router
from stepcoin.auth.router import router as auth_router
from stepcoin.config import Settings, get_settings
from stepcoin.console import install_console
from stepcoin.db import Database
from stepcoin.errors import install_error_handlers
from stepcoin.health.router import router as health_router
from stepcoin.leaderboards.router import router as leaderboards_router
from stepcoin.mail import transport as mail_transport
from stepcoin.observability import RequestContextMiddleware
from stepcoin.shop.admin_router import router as shop_admin_router
from stepcoin.shop.router import router as shop_router
from stepcoin.shop.webhooks import router as webhooks_router
from stepcoin.steps.router import admin_router as review_router
from stepcoin.steps.router import router as steps_router
from stepcoin.users.email_pages import router as email_pages_router
from stepcoin.users.email_router import router as email_links_router
from stepcoin.users.router import router as users_router
from stepcoin.validation import InputGuard
from stepcoin.wallet.router import router as wallet_router
from stepcoin.worker import open_jobs, start_worker_task

logger = logging.getLogger("stepcoin")


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
    return app
