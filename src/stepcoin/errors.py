"""One error family and one handler that writes RFC 9457 problem+json with a stable `code`."""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

import asyncpg
import orjson
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from stepcoin.replicas import is_connection_error

logger = logging.getLogger("stepcoin.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://stepcoin.app/problems/"
RETRY_AFTER_UNAVAILABLE_S = 1
"""Retry-After of a 503 database_unavailable: a restart or failover takes about this long."""


class AppError(Exception):
    """A failure the client can understand: HTTP status, stable machine code, human detail."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"
    # True for the few refusals whose bookkeeping must survive (a failed-login counter, a
    # revoked token family): the request's transaction commits, then the error is answered.
    keep_changes: bool = False

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        keep_changes: bool | None = None,
    ) -> None:
        self.detail = detail or self.title
        if keep_changes is not None:
            self.keep_changes = keep_changes
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra = extra or {}
        self.headers = headers or {}
        super().__init__(self.detail)


class NotFound(AppError):
    status, code, title = 404, "not_found", "Not found"


class Unauthorized(AppError):
    status, code, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


def account_gone() -> Unauthorized:
    """A valid token whose account was deactivated (or deleted) since it was issued."""
    return Unauthorized("This account is deactivated or gone.", code="invalid_token")


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Forbidden"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class InvalidInput(AppError):
    status, code, title = 422, "validation_error", "Invalid input"


class TooManyRequests(AppError):
    status, code, title = 429, "too_many_requests", "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": str(max(1, retry_after))})
        kwargs.setdefault("extra", {"retry_after": max(1, retry_after)})
        super().__init__(detail, **kwargs)


class PayloadTooLarge(AppError):
    status, code, title = 413, "payload_too_large", "Request body too large"


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Build the problem+json response; every error path in the service ends here."""
    body: dict[str, Any] = dict(extra or {})  # never over the RFC 9457 members below
    body |= {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    return Response(
        content=orjson.dumps(body, default=str),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


_STATUS_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload_too_large", "Request body too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    422: ("validation_error", "Invalid input"),
    429: ("too_many_requests", "Too many requests"),
}


def http_exception_response(exc: StarletteHTTPException, *, instance: str | None) -> Response:
    """The problem+json of an HTTPException, also for one raised outside the routing."""
    code, title = _STATUS_CODES.get(exc.status_code, ("http_error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem_response(
        exc.status_code,
        code,
        title,
        detail,
        instance=instance,
        headers=dict(exc.headers or {}),
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        errors.append({"loc": loc, "message": err.get("msg", ""), "type": err.get("type", "")})
    return errors


def install_error_handlers(app: FastAPI) -> None:
    """Route every failure, including 404, 405, validation errors and crashes, to problem+json."""

    async def app_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AppError)
        return problem_response(
            exc.status,
            exc.code,
            exc.title,
            exc.detail,
            instance=request.url.path,
            extra=exc.extra,
            headers=exc.headers,
        )

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = _validation_errors(exc)
        malformed = any(e["type"] == "json_invalid" for e in errors)
        code = "malformed_json" if malformed else "validation_error"
        detail = (
            "The request body is not valid JSON."
            if malformed
            else "; ".join(f"{'.'.join(e['loc'])}: {e['message']}" for e in errors[:10])
        )
        return problem_response(
            422,
            code,
            "Invalid input",
            detail,
            instance=request.url.path,
            extra={"errors": errors},
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        response = http_exception_response(exc, instance=request.url.path)
        if exc.status_code == 405 and (allowed := _allowed_methods(request)) is not None:
            response.headers["Allow"] = allowed
        return response

    async def out_of_range(request: Request, exc: Exception) -> Response:
        """The last line of defence behind the schemas and stepcoin.validation.InputGuard: a
        value the database cannot hold (SQLSTATE class 22, or a parameter the driver cannot
        encode) or a date pushed beyond year 1 or 9999. The request's transaction was rolled
        back on the way out, so nothing changed; logged, because a schema should have said so."""
        if isinstance(exc, sqlalchemy.exc.DBAPIError) and not _is_data_error(exc.orig):
            return await unexpected_error(request, exc)
        logger.warning("input the schema let through", exc_info=exc)
        return problem_response(
            422,
            "validation_error",
            "Invalid input",
            "A value is out of the range this service can store or compute with.",
            instance=request.url.path,
        )

    async def unexpected_error(request: Request, exc: Exception) -> Response:
        if is_connection_error(exc):
            # the database went away (a restart, a failover, a restore): nothing was committed
            # by this request's failed statement; the client may simply try again
            logger.warning(
                "the database is unreachable", exc_info=exc, extra={"path": request.url.path}
            )
            return problem_response(
                503,
                "database_unavailable",
                "Service unavailable",
                "The database cannot be reached right now; try again in a moment.",
                instance=request.url.path,
                headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE_S)},
            )
        logger.exception("unhandled error", extra={"path": request.url.path})
        return problem_response(
            500,
            "internal_error",
            "Internal server error",
            "Something went wrong on our side; it has been logged.",
            instance=request.url.path,
        )

    app.add_exception_handler(AppError, app_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(sqlalchemy.exc.DBAPIError, out_of_range)
    app.add_exception_handler(asyncpg.DataError, out_of_range)
    app.add_exception_handler(OverflowError, out_of_range)
    app.add_exception_handler(Exception, unexpected_error)


def _allowed_methods(request: Request) -> str | None:
    """Every method the OpenAPI document declares for the request's path: Starlette's own 405
    names only those of the first route whose path matched (GET alone for /v1/me)."""
    for template, item in request.app.openapi().get("paths", {}).items():
        if _template_pattern(template).fullmatch(request.url.path):
            methods = {method.upper() for method in item}
            if "GET" in methods:
                methods.add("HEAD")
            return ", ".join(sorted(methods))
    return None


@functools.lru_cache(maxsize=512)
def _template_pattern(template: str) -> re.Pattern[str]:
    """/v1/orders/{order_id} -> a pattern matching /v1/orders/<one segment>."""
    parts = re.split(r"(\{[^}/]+\})", template)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts))


def _is_data_error(orig: BaseException | None) -> bool:
    """SQLAlchemy's asyncpg adapter keeps the driver's exception as the cause of `orig`."""
    seen = 0
    while orig is not None and seen < 3:
        if isinstance(orig, asyncpg.DataError):
            return True
        orig, seen = orig.__cause__, seen + 1
    return False
