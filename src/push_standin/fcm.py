"""A stand-in for Firebase Cloud Messaging's HTTP v1 API and Google's OAuth2 token endpoint.

It makes its own service-account key (RSA), so a sender configured with `service_account()`
goes through the real flow: an RS256 JWT grant (RFC 7523) at `/token` for an access token, then
`POST /v1/projects/{project}/messages:send` with it. It checks what FCM checks (the bearer token,
the project, one target, string data values, 4 KB) and answers as FCM documents:
200 `{"name": ...}`, 404 NOT_FOUND/UNREGISTERED for a dead token, 403 SENDER_ID_MISMATCH for a
token of another Firebase project (FCM's "wrong environment"), 401 UNAUTHENTICATED, and
whatever `fail_next` scripts (429 QUOTA_EXCEEDED with Retry-After, 503 UNAVAILABLE, ...).
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from push_standin.server import ThreadServer

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAX_MESSAGE_BYTES = 4096
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_ERROR_CODES = {429: "QUOTA_EXCEEDED", 500: "INTERNAL", 503: "UNAVAILABLE", 404: "UNREGISTERED"}


def rpc_error(status: int, message: str, error_code: str | None = None) -> JSONResponse:
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if error_code:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": error_code,
            }
        ]
    return JSONResponse({"error": error}, status_code=status)


@dataclass
class Fault:
    status: int
    retry_after: str | None = None
    token: str | None = None  # only for this device token; None: the next message


@dataclass
class FcmStandIn:
    project_id: str = "stepcoin-standin"
    client_email: str = "push@stepcoin-standin.iam.gserviceaccount.com"
    token_lifetime: int = 3600
    dead: set[str] = field(default_factory=set)
    foreign: set[str] = field(default_factory=set)  # tokens of another Firebase project
    sent: list[dict[str, Any]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # the status of every send answered
    tokens_issued: int = 0
    received: int = 0  # sends that arrived, answered or not yet
    delay: float = 0.0  # seconds each send waits before its answer (a slow service)

    def __post_init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = secrets.token_hex(20)
        self._access: dict[str, float] = {}
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.base_url = "http://127.0.0.1"

    def service_account(self) -> dict[str, str]:
        """A service-account key in Google's JSON shape, pointing at this stand-in."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": self.key_id,
            "private_key": pem,
            "client_email": self.client_email,
            "token_uri": f"{self.base_url}/token",
        }

    def fail_next(
        self, status: int, *, retry_after: str | None = None, token: str | None = None
    ) -> None:
        """Answer the next send (to this token, or any) with this error instead."""
        with self._lock:
            self._faults.append(Fault(status, retry_after, token))

    def reset(self) -> None:
        """Forget every fault, dead or foreign token and everything sent (between tests)."""
        with self._lock:
            self._faults.clear()
            self.dead.clear()
            self.foreign.clear()
            self.sent.clear()
            self.answers.clear()
            self.received = 0
            self.delay = 0.0

    def expire_access_tokens(self) -> None:
        with self._lock:
            self._access.clear()

    def _fault_for(self, token: str) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.token in (None, token):
                    return self._faults.pop(i)
        return None

    async def token(self, request: Request) -> JSONResponse:
        form = await request.form()
        if form.get("grant_type") != GRANT_TYPE:
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        try:
            header = jwt.get_unverified_header(str(form.get("assertion", "")))
            claims = jwt.decode(
                str(form.get("assertion", "")),
                self._key.public_key(),
                algorithms=["RS256"],
                audience=f"{self.base_url}/token",
                issuer=self.client_email,
                options={"require": ["iss", "aud", "iat", "exp", "scope"]},
            )
        except jwt.PyJWTError as exc:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": str(exc)}, status_code=400
            )
        if header.get("kid") not in (None, self.key_id):
            return JSONResponse({"error": "invalid_grant", "error_description": "kid"}, 400)
        if claims["exp"] - claims["iat"] > 3600 or SCOPE not in str(claims["scope"]).split():
            return JSONResponse({"error": "invalid_scope"}, status_code=400)
        access = "ya29." + secrets.token_urlsafe(32)
        with self._lock:
            self._access[access] = time.time() + self.token_lifetime
            self.tokens_issued += 1
        return JSONResponse(
            {"access_token": access, "expires_in": self.token_lifetime - 1, "token_type": "Bearer"}
        )

    async def send(self, request: Request) -> JSONResponse:
        with self._lock:
            self.received += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        response = await self._send(request)
        with self._lock:
            self.answers.append(response.status_code)
        return response

    async def _send(self, request: Request) -> JSONResponse:
        auth = request.headers.get("authorization", "")
        access = auth[7:] if auth.lower().startswith("bearer ") else ""
        with self._lock:
            expiry = self._access.get(access)
        if expiry is None or expiry < time.time():
            return rpc_error(401, "Request had invalid authentication credentials.")
        if request.path_params["project"] != self.project_id:
            return rpc_error(403, "Permission denied on the project.")
        raw = await request.body()
        try:
            message = (await request.json())["message"]
            assert isinstance(message, dict)
        except Exception:
            return rpc_error(400, "Invalid JSON payload received.", "INVALID_ARGUMENT")
        targets = [k for k in ("token", "topic", "condition") if k in message]
        if len(targets) != 1:
            return rpc_error(400, "Exactly one of token, topic or condition.", "INVALID_ARGUMENT")
        if len(raw) > MAX_MESSAGE_BYTES + 64:  # the envelope {"message": ...} aside
            return rpc_error(400, "Message is too big", "INVALID_ARGUMENT")
        data = message.get("data", {})
        if not all(isinstance(v, str) for v in data.values()):
            return rpc_error(400, "Invalid value in data: strings only.", "INVALID_ARGUMENT")
        token = str(message.get("token", ""))
        fault = self._fault_for(token)
        if fault is not None:
            response = rpc_error(fault.status, "scripted failure", _ERROR_CODES.get(fault.status))
            if fault.retry_after is not None:
                response.headers["retry-after"] = fault.retry_after
            return response
        if token in self.dead:
            return rpc_error(404, "Requested entity was not found.", "UNREGISTERED")
        if token in self.foreign:  # e.g. a debug build registered with another project
            return rpc_error(403, "SenderId mismatch", "SENDER_ID_MISMATCH")
        name = f"projects/{self.project_id}/messages/{next(self._ids)}"
        with self._lock:
            self.sent.append({"name": name, **message})
        return JSONResponse({"name": name})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/token", self.token, methods=["POST"]),
                Route("/v1/projects/{project}/messages:send", self.send, methods=["POST"]),
            ]
        )


class FcmServer:
    """The FCM stand-in over HTTP on 127.0.0.1, with its service-account key in a file."""

    def __init__(self, standin: FcmStandIn) -> None:
        self.standin = standin
        self.server = ThreadServer(standin.app())
        standin.base_url = self.server.url
        self._dir = tempfile.TemporaryDirectory(prefix="fcm-standin-")
        self.credentials_file = str(Path(self._dir.name) / "service-account.json")
        Path(self.credentials_file).write_bytes(orjson.dumps(standin.service_account()))

    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self) -> FcmServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        self._dir.cleanup()
