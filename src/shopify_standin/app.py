"""The stand-in over HTTP: the GraphQL endpoint, /_standin/ controls, a server in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from shopify_standin.records import StandInError
from shopify_standin.webhooks import _inventory_payload, _order_payload, _product_payload

if TYPE_CHECKING:
    from shopify_standin.store import ShopifyStandIn, _Fault


# -- HTTP routes ----------------------------------------------------------------------------------

_UNAUTHORISED = {
    "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
}


def _routes(standin: ShopifyStandIn) -> list[Route]:
    async def graphql_endpoint(request: Request) -> Response:
        with standin._lock:
            standin.calls += 1
            standin._home_loop = asyncio.get_running_loop()
        if request.path_params["version"] != standin.api_version:
            return JSONResponse({"errors": "Not Found"}, status_code=404)
        if not standin._authorised(request):
            return JSONResponse(_UNAUTHORISED, status_code=401)
        try:
            body = json.loads(await request.body())
            query = body["query"]
            if not isinstance(query, str):
                raise TypeError("query")
            variables = body.get("variables") or {}
            if not isinstance(variables, dict):
                raise TypeError("variables")
        except (ValueError, KeyError, TypeError, AttributeError):
            return JSONResponse(
                {"errors": {"query": "Required parameter missing or invalid"}}, status_code=400
            )
        fault = standin._take_fault(query)
        if fault is not None and fault.kind == "throttle":
            return JSONResponse(
                {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]},
                status_code=429,
                headers={"Retry-After": _seconds(fault.retry_after or 0.0)},
            )
        if fault is not None and not fault.after_execute:
            early = await _early_fault(fault)
            if early is not None:
                return early
        answer = standin.execute_graphql(query, variables, body.get("operationName"), fault=fault)
        if fault is not None and fault.after_execute:
            if fault.kind == "delay":
                await asyncio.sleep(fault.seconds)
            else:
                return _status_response(fault)
        return JSONResponse(answer)

    def control(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            standin._home_loop = asyncio.get_running_loop()
            if not standin._authorised(request):
                return JSONResponse(_UNAUTHORISED, status_code=401)
            try:
                return await handler(request)
            except StandInError as exc:
                return JSONResponse({"error": str(exc)}, status_code=404)
            except (ValueError, TypeError, KeyError) as exc:
                return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)

        return guarded

    async def json_body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        data = json.loads(raw) if raw else {}
        if not isinstance(data, dict):
            raise TypeError("a JSON object is expected")
        return data

    async def state(request: Request) -> Response:
        with standin._lock:
            return JSONResponse(
                {
                    "shop_domain": standin.shop_domain,
                    "api_version": standin.api_version,
                    "products": [_product_payload(p) for p in standin._products.values()],
                    "orders": [_order_payload(o) for o in standin._orders.values()],
                    "calls": standin.calls,
                    "operations": dict(standin.operations),
                    "order_create_calls": dict(standin.order_create_calls),
                    "order_cancel_calls": dict(standin.order_cancel_calls),
                    "deliveries": [
                        {"webhook_id": d.webhook_id, "topic": d.topic, "attempts": d.attempts}
                        for d in standin.deliveries
                    ],
                }
            )

    async def add_product(request: Request) -> Response:
        data = await json_body(request)
        product = standin.add_product(**data)
        return JSONResponse(_product_payload(product), status_code=201)

    async def update_product(request: Request) -> Response:
        data = await json_body(request)
        product = standin.update_product(request.path_params["product_id"], **data)
        return JSONResponse(_product_payload(product))

    async def archive_product(request: Request) -> Response:
        product = standin.archive_product(request.path_params["product_id"])
        return JSONResponse(_product_payload(product))

    async def delete_product(request: Request) -> Response:
        standin.delete_product(request.path_params["product_id"])
        return Response(status_code=204)

    async def set_inventory(request: Request) -> Response:
        data = await json_body(request)
        variant = standin.set_inventory(data["variant_id"], int(data["quantity"]))
        return JSONResponse(_inventory_payload(variant))

    async def fulfill(request: Request) -> Response:
        data = await json_body(request)
        order = standin.fulfill_order(request.path_params["order_id"], data.get("tracking_number"))
        return JSONResponse(_order_payload(order))

    async def cancel(request: Request) -> Response:
        data = await json_body(request)
        order = standin.cancel_order(
            request.path_params["order_id"], restock=bool(data.get("restock", False))
        )
        return JSONResponse(_order_payload(order))

    async def faults(request: Request) -> Response:
        data = await json_body(request)
        kind = data.get("kind", "fail")
        n = int(data.get("n", 1))
        if kind == "fail":
            standin.fail_next(
                n,
                int(data.get("status", 503)),
                retry_after=data.get("retry_after"),
                after_execute=bool(data.get("after_execute", False)),
                when=data.get("when"),
            )
        elif kind == "throttle":
            standin.throttle_next(
                n,
                retry_after=float(data.get("retry_after", 2.0)),
                graphql=bool(data.get("graphql", False)),
                when=data.get("when"),
            )
        elif kind == "delay":
            standin.delay_next(
                n,
                float(data.get("seconds", 1.0)),
                after_execute=bool(data.get("after_execute", False)),
                when=data.get("when"),
            )
        else:
            raise ValueError(f"unknown fault kind {kind!r}")
        return JSONResponse({"queued": n, "kind": kind})

    async def redeliver(request: Request) -> Response:
        outcome = await standin.deliver_again(request.path_params["webhook_id"])
        return JSONResponse({"outcome": outcome})

    async def drain(request: Request) -> Response:
        await standin.drain_webhooks()
        return JSONResponse({"deliveries": len(standin.deliveries)})

    async def index(request: Request) -> Response:
        return PlainTextResponse(
            "StepCoin's Shopify stand-in.\n"
            f"GraphQL: POST {standin.graphql_path} with X-Shopify-Access-Token\n"
            "Controls: GET /_standin/state, POST /_standin/products, ...\n"
        )

    return [
        Route("/", index, methods=["GET"]),
        Route("/admin/api/{version}/graphql.json", graphql_endpoint, methods=["POST"]),
        Route("/_standin/state", control(state), methods=["GET"]),
        Route("/_standin/products", control(add_product), methods=["POST"]),
        Route("/_standin/products/{product_id}", control(update_product), methods=["PATCH"]),
        Route("/_standin/products/{product_id}", control(delete_product), methods=["DELETE"]),
        Route(
            "/_standin/products/{product_id}/archive", control(archive_product), methods=["POST"]
        ),
        Route("/_standin/inventory", control(set_inventory), methods=["POST"]),
        Route("/_standin/orders/{order_id}/fulfill", control(fulfill), methods=["POST"]),
        Route("/_standin/orders/{order_id}/cancel", control(cancel), methods=["POST"]),
        Route("/_standin/faults", control(faults), methods=["POST"]),
        Route("/_standin/webhooks/drain", control(drain), methods=["POST"]),
        Route("/_standin/webhooks/{webhook_id}/redeliver", control(redeliver), methods=["POST"]),
    ]


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _status_response(fault: _Fault) -> Response:
    headers = {"Retry-After": _seconds(fault.retry_after)} if fault.retry_after is not None else {}
    return JSONResponse(
        {"errors": f"stand-in failure {fault.status}"}, status_code=fault.status, headers=headers
    )


async def _early_fault(fault: _Fault) -> Response | None:
    if fault.kind == "status":
        return _status_response(fault)
    if fault.kind == "delay":
        await asyncio.sleep(fault.seconds)
    return None


@contextlib.contextmanager
def serve_in_thread(
    standin: ShopifyStandIn, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[str]:
    """Serve the stand-in over real HTTP from a background thread; yields its base URL."""
    import uvicorn

    config = uvicorn.Config(
        standin.build_app(), host=host, port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="shopify-standin", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the Shopify stand-in did not start")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
