"""create_app(): the FastAPI application with its routers, middleware and error handlers."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stepcoin import __version__
from stepcoin.accounts.router import LIMITED as ACCOUNTS_LIMITED
from stepcoin.accounts.router import router as accounts_router
from stepcoin.achievements.router import achievements_answer
from stepcoin.achievements.router import admin_router as achievements_admin_router
from stepcoin.achievements.router import router as achievements_router
from stepcoin.admin.router import router as admin_router
from stepcoin.admin.settings_router import router as settings_router
from stepcoin.app_versions import AppVersionGate
from stepcoin.auth.router import LIMITED as AUTH_LIMITED
from stepcoin.auth.router import router as auth_router
from stepcoin.auth.tokens import bearer_claims, first_headers, is_json
from stepcoin.campaigns.router import broadcasts_router
from stepcoin.campaigns.router import router as campaigns_router
from stepcoin.challenges.router import admin_router as challenges_admin_router
from stepcoin.challenges.router import router as challenges_router
from stepcoin.config import Settings, get_settings
from stepcoin.console import install_console
from stepcoin.db import READ_AFTER_KEY, REPLICA_USED_KEY, Database
from stepcoin.errors import install_error_handlers
from stepcoin.fairplay.router import router as fairplay_router
from stepcoin.health.router import router as health_router
from stepcoin.heap import freeze_startup_heap, thaw_heap
from stepcoin.leaderboards.router import PATH as BOARD_PATH
from stepcoin.leaderboards.router import admin_router as leaderboards_admin_router
from stepcoin.leaderboards.router import hot_answers as board_answers
from stepcoin.leaderboards.router import router as leaderboards_router
from stepcoin.mail import transport as mail_transport
from stepcoin.notify.router import router as notify_router
from stepcoin.observability import RequestContextMiddleware, configure_logging
from stepcoin.openapi import install_openapi
from stepcoin.ratelimit import RateLimitGate
from stepcoin.referrals.router import LIMITED as REFERRALS_LIMITED
from stepcoin.referrals.router import admin_router as referrals_admin_router
from stepcoin.referrals.router import router as referrals_router
from stepcoin.replicas import READ_AFTER_HEADER, Replicas, format_lsn, is_connection_error
from stepcoin.shop.admin_router import router as shop_admin_router
from stepcoin.shop.hot import HotOrders
from stepcoin.shop.router import LIMITED as SHOP_LIMITED
from stepcoin.shop.router import router as shop_router
from stepcoin.shop.webhooks import router as webhooks_router
from stepcoin.social.group_router import admin_router as groups_admin_router
from stepcoin.social.group_router import router as groups_router
from stepcoin.social.router import LIMITED as SOCIAL_LIMITED
from stepcoin.social.router import admin_router as social_admin_router
from stepcoin.social.router import router as social_router
from stepcoin.steps.earn_rules_router import admin_router as earn_rules_admin_router
from stepcoin.steps.earn_rules_router import router as earn_rules_router
from stepcoin.steps.hot import HotReview
from stepcoin.steps.router import LIMITED as STEPS_LIMITED
from stepcoin.steps.router import admin_router as review_router
from stepcoin.steps.router import router as steps_router
from stepcoin.steps.router import sync_answer
from stepcoin.users.email_pages import router as email_pages_router
from stepcoin.users.email_router import LIMITED as MAIL_LIMITED
from stepcoin.users.email_router import router as email_links_router
from stepcoin.users.router import profile_answer
from stepcoin.users.router import router as users_router
from stepcoin.validation import InputGuard, RouteLabel, read_body, replay, send_json
from stepcoin.wallet.router import router as wallet_router
from stepcoin.wallet.router import transactions_answer, wallet_answer
from stepcoin.worker import open_jobs, start_worker_task

logger = logging.getLogger("stepcoin")

Answer = Callable[[Any, uuid.UUID, bytes], Awaitable[bytes | None]]


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

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        answers: dict[str, Answer],
        templates: dict[str, str] | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.answers = answers
        # a path's route template (the metrics label) when it is not the path itself
        templates = templates or {}
        self.routes = {path: RouteLabel(templates.get(path, path)) for path in answers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            answer = self.answers.get(scope["path"])
            if answer is not None:
                body = await self._answer(scope, answer)
                if body is not None:
                    scope["route"] = self.routes[scope["path"]]
                    await send_json(send, body)
                    return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, answer: Answer) -> bytes | None:
        headers = first_headers(scope, b"authorization")
        claims = bearer_claims(self.settings, headers.get(b"authorization"))
        if claims is None:
            return None
        database: Database = scope["app"].state.database
        if database.replicas is not None:
            body = await self._on_standby(database, scope, answer, claims.user_id)
            if body is not None:
                return body
        try:
            pool = await database.fast_pool()
            async with pool.acquire() as driver:
                return await answer(driver, claims.user_id, scope.get("query_string", b""))
        except Exception:  # the FastAPI route answers (and logs) it
            logger.debug("hot route fell through after an error", exc_info=True)
            return None

    @staticmethod
    async def _on_standby(
        database: Database, scope: Scope, answer: Answer, user_id: uuid.UUID
    ) -> bytes | None:
        """The answer from a standby (docs/replicas.md); None: the primary answers instead (no
        usable standby, a failure there, or no 200 body: e.g. an account too new for it)."""
        replica = database.replica_for(scope)
        pool = replica.pool if replica is not None else None
        if replica is None or pool is None:
            return None
        try:
            async with pool.acquire() as driver:
                return await answer(driver, user_id, scope.get("query_string", b""))
        except Exception as exc:
            if is_connection_error(exc) and database.replicas is not None:
                database.replicas.mark_down(replica, exc)
            logger.debug("hot route on standby %s failed", replica.name, exc_info=True)
            return None


SyncAnswer = Callable[[Any, uuid.UUID, bytes], Awaitable[bytes | None]]


class HotSync:
    """POST /v1/steps (the phone's step sync and bulk ingest) answered without FastAPI's routing,
    dependency solving and response model (issue 13), inside the same middleware as HotRoutes:
    request ids, the access log, metrics, the body-size limit and the input guard apply as to
    any route.

    Only a clean success is answered here: a valid bearer token (the same cached verification
    as `auth.dependencies.current_claims`), a body sent as JSON (no Content-Type, or
    application/json) that the route's own model accepts (`steps.router.sync_answer`), and a
    sync that succeeded. Anything else (no or bad token, another content type, a body the
    model refuses, a gone account, a conflict, a database error) falls through to the FastAPI
    route with the body replayed, which answers as it always did (problem+json, 401/409/422/500).
    A sync that failed wrote nothing (the apply function is one atomic statement; a gone account
    or a conflict is found before or instead of any write), so the route's second try is a
    fresh sync; one whose outcome is unknown (a connection lost during the call) is at worst an
    idempotent resend there: nothing is paid twice. The route stays declared: OpenAPI, docs and
    the fallback are unchanged.
    """

    path = "/v1/steps"

    def __init__(self, app: ASGIApp, *, settings: Settings, answer: SyncAnswer) -> None:
        self.app = app
        self.settings = settings
        self.answer = answer
        self.route = RouteLabel(self.path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != self.path
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        user_id = self._caller(scope)
        if user_id is None:
            await self.app(scope, receive, send)
            return
        # the whole body: already read (and size-checked) by the guard around us
        raw, messages = await read_body(receive)
        body = None
        if messages[-1]["type"] == "http.request":
            body = await self._answer(scope, user_id, raw)
        if body is None:
            await self.app(scope, replay(messages, receive), send)
            return
        scope["route"] = self.route
        await send_json(send, body)

    async def _answer(self, scope: Scope, user_id: uuid.UUID, body: bytes) -> bytes | None:
        try:
            return await self.answer(scope["app"].state.database, user_id, body)
        except Exception:  # the FastAPI route answers (and logs) it
            logger.debug("the sync's fast path fell through after an error", exc_info=True)
            return None

    def _caller(self, scope: Scope) -> uuid.UUID | None:
        """The verified caller of a request sent as JSON, else None (the route judges it)."""
        headers = first_headers(scope, b"authorization", b"content-type")
        content_type = headers.get(b"content-type")
        if content_type and not is_json(content_type):
            return None  # the route's own reading of other types is left to it
        claims = bearer_claims(self.settings, headers.get(b"authorization"))
        return None if claims is None else claims.user_id


READ_AFTER_NAME = READ_AFTER_HEADER.lower().encode("latin-1")


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class ReplicaRouting:
    """Read replicas' routing and read-your-writes (docs/replicas.md), installed only when
    STEPCOIN_DATABASE_REPLICA_URLS lists standbys; outside the fast paths, so it sees them.

    - A GET may be served by a standby that has replayed what its caller must see: the
      `StepCoin-Read-After` marker the client sent back, and the last write this process saw the
      caller make (`stepcoin.read_after` in the scope; HotRoutes and the Replica* dependencies
      choose by it).
    - A GET whose read went to a standby and failed (an exception, or a 5xx answer before any
      byte left) is run again on the primary: a standby dying under load fails no request.
    - Any other successful request (a write) is answered with the primary's WAL position after
      it as `StepCoin-Read-After`, and the caller's position is remembered in this process.
    """

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        database: Database = scope["app"].state.database
        replicas = database.replicas
        if replicas is None:
            await self.app(scope, receive, send)
            return
        headers = first_headers(scope, b"authorization", READ_AFTER_NAME)
        claims = bearer_claims(self.settings, headers.get(b"authorization"))
        user_id = None if claims is None else claims.user_id
        if scope["method"] in ("GET", "HEAD"):
            scope[READ_AFTER_KEY] = replicas.required_lsn(user_id, headers.get(READ_AFTER_NAME))
            await self._read(scope, receive, send)
        elif scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
        else:
            await self._write(database, replicas, user_id, scope, receive, send)

    async def _read(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False
        failed = False

        async def guarded(message: Message) -> None:
            nonlocal started, failed
            if failed:
                return
            if (
                message["type"] == "http.response.start"
                and message["status"] >= 500
                and scope.get(REPLICA_USED_KEY) is not None
            ):
                failed = True  # swallowed: the primary answers below
                return
            started = True
            await send(message)

        try:
            await self.app(scope, receive, guarded)
        except Exception:
            if started or scope.get(REPLICA_USED_KEY) is None:
                raise
            failed = True
        if not failed:
            return
        replica = scope.get(REPLICA_USED_KEY)
        logger.warning(
            "a read on standby %s failed; answered from the primary",
            getattr(replica, "name", "?"),
        )
        retry = {k: v for k, v in scope.items() if k not in (READ_AFTER_KEY, REPLICA_USED_KEY)}
        await self.app(retry, _no_body, send)

    async def _write(
        self,
        database: Database,
        replicas: Replicas,
        user_id: uuid.UUID | None,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        async def marking(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                lsn = await _primary_position(database, replicas)
                if lsn:
                    if user_id is not None:
                        replicas.remember_write(user_id, lsn)
                    marker = (READ_AFTER_NAME, format_lsn(lsn).encode("latin-1"))
                    message = {**message, "headers": [*message.get("headers", []), marker]}
            await send(message)

        await self.app(scope, receive, marking)


async def _primary_position(database: Database, replicas: Replicas) -> int | None:
    """The primary's WAL position now, after the request's commit (None if it cannot say)."""
    try:
        async with (await database.fast_pool()).acquire() as conn:
            return await replicas.primary_lsn(conn)
    except Exception:
        logger.warning("no WAL position for a write's read-your-writes marker", exc_info=True)
        return None


LIMITED_ROUTES = (
    *AUTH_LIMITED,
    *MAIL_LIMITED,
    *STEPS_LIMITED,
    *SHOP_LIMITED,
    *ACCOUNTS_LIMITED,
    *REFERRALS_LIMITED,
    *SOCIAL_LIMITED,
)


def account_of(settings: Settings) -> Callable[[Scope], str | None]:
    """The rate limits' account of a request: the user of a valid bearer token (the cached
    verification the routes use), else None (only the address counts; the route judges)."""

    def caller(scope: Scope) -> str | None:
        claims = bearer_claims(
            settings, first_headers(scope, b"authorization").get(b"authorization")
        )
        return None if claims is None else str(claims.user_id)

    return caller


def _telemetry(settings: Settings) -> dict[str, Any]:
    """FastAPI's native OpenTelemetry (FastAPI >= 0.16x) only when asked for: on, it asks the
    OpenTelemetry API for configured providers on every request (3-5 % of a hot read's API
    CPU; BENCHMARKS.md, run 16). Older FastAPI has no such check and no such argument."""
    if settings.opentelemetry or "telemetry" not in inspect.signature(FastAPI).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def create_served_app() -> FastAPI:
    """`stepcoin serve`'s factory. uvicorn starts each of `--workers N` processes as a new
    interpreter that imports this: without configuring its logs here, a process wrote no access
    line, no request id and no JSON (its warnings reached stderr as bare messages)."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)


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
            replica_urls=settings.database_replica_urls,
            replica_max_lag_ms=settings.replica_max_lag_ms,
            replica_check_ms=settings.replica_check_ms,
        )
        app.state.database = database
        try:
            if database.replicas is not None:
                await database.replicas.check_once()  # in rotation from the first request
                database.start_replica_checks()
            freeze_startup_heap()  # full collections then walk only what serving made
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
            thaw_heap()
            await database.dispose()

    app = FastAPI(
        title="StepCoin API",
        version=__version__,
        description="Walk-to-earn backend: steps in, coins out, rewards from a Shopify store.",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
        **_telemetry(settings),
    )
    app.state.settings = settings
    app.add_middleware(
        HotRoutes,
        settings=settings,
        answers={
            "/v1/me": profile_answer,
            "/v1/wallet": wallet_answer,
            "/v1/wallet/transactions": transactions_answer,
            "/v1/achievements": achievements_answer,
            **board_answers(),
        },
        templates=dict.fromkeys(board_answers(), BOARD_PATH),
    )  # innermost: after the guard, the body limit, the request id and the metrics
    app.add_middleware(HotSync, settings=settings, answer=sync_answer)  # the same, for POSTs
    app.add_middleware(HotOrders, settings=settings)  # POST /v1/orders: shop/hot.py
    app.add_middleware(HotReview, settings=settings)  # a review's decision: steps/hot.py
    if settings.database_replica_urls:  # outside the fast paths: it routes and marks them too
        app.add_middleware(ReplicaRouting, settings=settings)
    app.add_middleware(InputGuard)  # inside the next one: after the body-size limit
    app.add_middleware(  # the rate limits, before the input is even read (stepcoin.ratelimit)
        RateLimitGate, routes=LIMITED_ROUTES, account_of=account_of(settings)
    )
    app.add_middleware(AppVersionGate)  # 426 for an app too old, before anything else runs
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
    app.include_router(fairplay_router)
    app.include_router(steps_router)
    app.include_router(review_router)
    app.include_router(earn_rules_router)
    app.include_router(earn_rules_admin_router)
    app.include_router(shop_router)
    app.include_router(shop_admin_router)
    app.include_router(webhooks_router)
    app.include_router(wallet_router)
    app.include_router(admin_router)
    app.include_router(settings_router)
    app.include_router(achievements_router)
    app.include_router(achievements_admin_router)
    app.include_router(leaderboards_router)
    app.include_router(leaderboards_admin_router)
    app.include_router(campaigns_router)
    app.include_router(broadcasts_router)
    app.include_router(referrals_router)
    app.include_router(referrals_admin_router)
    app.include_router(challenges_router)
    app.include_router(challenges_admin_router)
    app.include_router(social_router)
    app.include_router(notify_router)
    app.include_router(social_admin_router)
    app.include_router(groups_router)
    app.include_router(groups_admin_router)
    install_console(app)
    install_openapi(app, [(r.method, r.path, r.code) for r in LIMITED_ROUTES])
    return app
