"""A stand-in for the Apple Push Notification service: HTTP/2 only, over TLS with ALPN h2 (a
certificate from its own authority, made by trustme), token-based authentication.

One `ApnsStandIn` holds the state; `app("production")` and `app("sandbox")` are the two hosts.
It checks what APNs checks and answers with APNs's status codes and reasons: 403
MissingProviderToken / InvalidProviderToken / ExpiredProviderToken (a provider token older than
an hour), 400 BadDeviceToken (a token of the other environment, or not hex), BadTopic,
MissingTopic, InvalidPushType, BadCollapseId, BadExpirationDate, 413 PayloadTooLarge (4 KB),
410 Unregistered (a dead token, with its timestamp), and whatever `fail_next` scripts (429
TooManyRequests with Retry-After, 500 InternalServerError, 503 ServiceUnavailable).
A token is bound to the environment it is first sent to, or to the one `register` names.
"""

from __future__ import annotations

import re
import secrets
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import orjson
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from push_standin.server import ThreadServer

MAX_PAYLOAD_BYTES = 4096
PROVIDER_TOKEN_MAX_AGE = 3600
_TOKEN = re.compile(r"^[0-9a-fA-F]{64,200}$")
_REASONS = {
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
    410: "Unregistered",
    400: "BadDeviceToken",
}


def refuse(status: int, reason: str, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {"reason": reason, **extra}, status_code=status, headers={"apns-id": str(uuid.uuid4())}
    )


@dataclass
class Fault:
    status: int
    reason: str | None = None
    retry_after: str | None = None
    token: str | None = None


@dataclass
class ApnsStandIn:
    topic: str = "app.stepcoin.standin"
    team_id: str = "STANDIN123"
    devices: dict[str, str] = field(default_factory=dict)  # token -> environment
    dead: dict[str, int] = field(default_factory=dict)  # token -> unregistered at (ms)
    sent: list[dict[str, Any]] = field(default_factory=list)
    answers: list[tuple[str, int, str]] = field(
        default_factory=list
    )  # (environment, status, reason)

    def __post_init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.key_id = secrets.token_hex(5).upper()
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    @property
    def private_key_pem(self) -> str:
        """The .p8 auth key (PKCS#8 PEM), as Apple's developer portal hands it out."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def register(self, token: str, environment: str) -> None:
        with self._lock:
            self.devices[token] = environment

    def unregister(self, token: str) -> None:
        """The app was removed from the device: APNs answers 410 from now on."""
        with self._lock:
            self.dead[token] = int(time.time() * 1000)

    def fail_next(
        self,
        status: int,
        *,
        reason: str | None = None,
        retry_after: str | None = None,
        token: str | None = None,
    ) -> None:
        with self._lock:
            self._faults.append(Fault(status, reason, retry_after, token))

    def reset(self) -> None:
        """Forget every fault, device binding, dead token and everything sent."""
        with self._lock:
            self._faults.clear()
            self.devices.clear()
            self.dead.clear()
            self.sent.clear()
            self.answers.clear()

    def _fault_for(self, token: str) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.token in (None, token):
                    return self._faults.pop(i)
        return None

    def _check_provider_token(self, header: str) -> str | None:
        if not header.lower().startswith("bearer "):
            return "MissingProviderToken"
        token = header[7:]
        try:
            head = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["ES256"],
                options={"require": ["iss", "iat"], "verify_iat": False},
            )
        except jwt.PyJWTError:
            return "InvalidProviderToken"
        if head.get("kid") != self.key_id or claims.get("iss") != self.team_id:
            return "InvalidProviderToken"
        if time.time() - float(claims["iat"]) > PROVIDER_TOKEN_MAX_AGE:
            return "ExpiredProviderToken"
        return None

    async def _push(self, request: Request, environment: str) -> Response:
        if request.scope.get("http_version") != "2":
            return refuse(400, "BadRequest", detail="APNs speaks HTTP/2 only")
        token = request.path_params["token"]
        problem = self._check_provider_token(request.headers.get("authorization", ""))
        if problem:
            return refuse(403, problem)
        topic = request.headers.get("apns-topic")
        if not topic:
            return refuse(400, "MissingTopic")
        if topic != self.topic:
            return refuse(400, "BadTopic")
        if request.headers.get("apns-push-type") not in ("alert", "background", "voip"):
            return refuse(400, "InvalidPushType")
        collapse = request.headers.get("apns-collapse-id")
        if collapse is not None and len(collapse.encode()) > 64:
            return refuse(400, "BadCollapseId")
        expiration = request.headers.get("apns-expiration", "0")
        if not expiration.isdigit():
            return refuse(400, "BadExpirationDate")
        body = await request.body()
        if len(body) > MAX_PAYLOAD_BYTES:
            return refuse(413, "PayloadTooLarge")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return refuse(400, "BadPayload") if body else refuse(400, "PayloadEmpty")
        if not _TOKEN.match(token):
            return refuse(400, "BadDeviceToken")
        fault = self._fault_for(token)
        if fault is not None:
            response = refuse(fault.status, fault.reason or _REASONS.get(fault.status, "Error"))
            if fault.retry_after is not None:
                response.headers["retry-after"] = fault.retry_after
            return response
        with self._lock:
            if token in self.dead:
                return refuse(410, "Unregistered", timestamp=self.dead[token])
            bound = self.devices.setdefault(token, environment)
        if bound != environment:
            return refuse(400, "BadDeviceToken")
        apns_id = request.headers.get("apns-id") or str(uuid.uuid4())
        with self._lock:
            self.sent.append(
                {
                    "environment": environment,
                    "token": token,
                    "headers": {k: v for k, v in request.headers.items() if k.startswith("apns-")},
                    "payload": payload,
                }
            )
        return Response(status_code=200, headers={"apns-id": apns_id})

    def app(self, environment: str) -> Starlette:
        async def push(request: Request) -> Response:
            response = await self._push(request, environment)
            reason = ""
            if response.status_code != 200:
                reason = orjson.loads(bytes(response.body)).get("reason", "")
            with self._lock:
                self.answers.append((environment, response.status_code, reason))
            return response

        return Starlette(routes=[Route("/3/device/{token}", push, methods=["POST"])])


class ApnsServers:
    """Both APNs hosts of one stand-in over TLS + HTTP/2, with a certificate authority whose
    PEM file (`ca_file`) the client trusts."""

    def __init__(self, standin: ApnsStandIn) -> None:
        self.standin = standin
        self._dir = tempfile.TemporaryDirectory(prefix="apns-standin-")
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        folder = Path(self._dir.name)
        self.ca_file = str(folder / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        certfile, keyfile = str(folder / "cert.pem"), str(folder / "key.pem")
        cert.cert_chain_pems[0].write_to_path(certfile)
        for extra in cert.cert_chain_pems[1:]:
            extra.write_to_path(certfile, append=True)
        cert.private_key_pem.write_to_path(keyfile)
        self.key_file = str(folder / "AuthKey.p8")
        Path(self.key_file).write_text(standin.private_key_pem)
        self.production = ThreadServer(
            standin.app("production"), certfile=certfile, keyfile=keyfile, h2_only=True
        )
        self.sandbox = ThreadServer(
            standin.app("sandbox"), certfile=certfile, keyfile=keyfile, h2_only=True
        )

    def __enter__(self) -> ApnsServers:
        self.production.start()
        self.sandbox.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.production.stop()
        self.sandbox.stop()
        self._dir.cleanup()
