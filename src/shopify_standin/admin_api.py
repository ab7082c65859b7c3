"""The Admin GraphQL API's resolvers, views, cursor pagination, search and query cost."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInt,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
)
from graphql.utilities import value_from_ast

from shopify_standin.records import (
    StandInFulfillment,
    StandInLineItem,
    StandInOrder,
    StandInProduct,
    StandInVariant,
    _gql_time,
    _money,
    _strip_html,
)

if TYPE_CHECKING:
    from shopify_standin.store import ShopifyStandIn


MAX_QUERY_COST = 1000
MAX_PAGE_SIZE = 250
MUTATION_COST = 10


# -- GraphQL views and resolvers ------------------------------------------------------------------


def _encode_cursor(item_id: int, value: Any) -> str:
    raw = json.dumps({"last_id": item_id, "last_value": value}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[Any, int]:
    try:
        data = json.loads(base64.b64decode(cursor.encode(), validate=True))
        return data["last_value"], int(data["last_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor!r}") from exc


def _paginate(
    items: Sequence[Any],
    key: Callable[[Any], Any],
    ident: Callable[[Any], int],
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    reverse: bool,
    wrap: Callable[[Any], Any],
) -> dict[str, Any]:
    """A Relay connection over `items` ordered by (key, id), as Shopify pages its lists."""
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last")
    if first is not None and last is not None:
        raise GraphQLError("providing both first and last is not supported")
    size = first if first is not None else last
    assert size is not None
    if not 0 <= size <= MAX_PAGE_SIZE:
        raise GraphQLError(f"The page size must be between 0 and {MAX_PAGE_SIZE}")

    def position(item: Any) -> tuple[Any, int]:
        return (key(item), ident(item))

    ordered = sorted(items, key=position, reverse=reverse)

    def comes_after(item: Any, mark: tuple[Any, int]) -> bool:
        return position(item) < mark if reverse else position(item) > mark

    def comes_before(item: Any, mark: tuple[Any, int]) -> bool:
        return position(item) > mark if reverse else position(item) < mark

    window = ordered
    if after is not None:
        mark = _decode_cursor(after)
        window = [i for i in window if comes_after(i, mark)]
    if before is not None:
        mark = _decode_cursor(before)
        window = [i for i in window if comes_before(i, mark)]
    if first is not None:
        page = window[:size]
        has_next = len(window) > size
        has_previous = after is not None and len(window) < len(ordered)
    else:
        page = window[-size:] if size else []
        has_next = before is not None and len(window) < len(ordered)
        has_previous = len(window) > size
    edges = [{"cursor": _encode_cursor(ident(i), key(i)), "node": wrap(i)} for i in page]
    return {
        "edges": edges,
        "nodes": [edge["node"] for edge in edges],
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


_SEARCH_TERM = re.compile(
    r"""(?P<neg>-|NOT\s+)?(?:(?P<key>[A-Za-z_]+):)?(?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s()]+)"""
)


def _search_terms(query: str | None) -> list[tuple[bool, str | None, str]]:
    """Shopify search syntax, the part used here: [-]key:value terms joined by AND."""
    terms: list[tuple[bool, str | None, str]] = []
    for match in _SEARCH_TERM.finditer(query or ""):
        value = match.group("value")
        if match.group("key") is None and value in {"AND", "OR"}:
            continue
        if value[:1] in {"'", '"'}:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        terms.append((bool(match.group("neg")), match.group("key"), value))
    return terms


def _matches(terms: Sequence[tuple[bool, str | None, str]], fields: Mapping[str, Any]) -> bool:
    for negated, key, value in terms:
        wanted = value.casefold()
        if key is None:
            hit = wanted in str(fields.get("title", "")).casefold()
        elif key not in fields:
            continue  # Shopify ignores filters a resource does not support
        else:
            have = fields[key]
            options = (
                {v.strip().casefold() for v in wanted.split(",")} if key == "status" else {wanted}
            )
            if isinstance(have, list | tuple | set):
                hit = bool(options & {str(h).casefold() for h in have})
            else:
                hit = str(have).casefold() in options
        if hit == negated:
            return False
    return True


class _Root:
    def __init__(self, standin: ShopifyStandIn) -> None:
        self._s = standin

    def shop(self, info: GraphQLResolveInfo) -> dict[str, Any]:
        return {
            "name": "StepCoin Stand-in",
            "myshopifyDomain": self._s.shop_domain,
            "currencyCode": "EUR",
        }

    def product(self, info: GraphQLResolveInfo, id: str) -> _ProductView | None:
        product = self._s._products.get(_gid_number(id, "Product"))
        return None if product is None else _ProductView(self._s, product)

    def productVariant(self, info: GraphQLResolveInfo, id: str) -> _VariantView | None:
        variant = self._s._variants.get(_gid_number(id, "ProductVariant"))
        return None if variant is None else _VariantView(self._s, variant)

    def products(self, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
        terms = _search_terms(args.get("query"))
        items = [
            p
            for p in self._s._products.values()
            if _matches(
                terms,
                {
                    "title": p.title,
                    "status": p.status,
                    "product_type": p.product_type,
                    "tag": p.tags,
                    "vendor": p.vendor,
                    "id": str(p.id),
                },
            )
        ]
        sort_key = args.get("sortKey") or "ID"
        keys: dict[str, Callable[[StandInProduct], Any]] = {
            "TITLE": lambda p: p.title.casefold(),
            "UPDATED_AT": lambda p: _gql_time(p.updated_at),
            "CREATED_AT": lambda p: _gql_time(p.created_at),
            "PRODUCT_TYPE": lambda p: p.product_type.casefold(),
            "VENDOR": lambda p: p.vendor.casefold(),
        }
        return _paginate(
            items,
            keys.get(sort_key, lambda p: p.id),
            lambda p: p.id,
            first=args.get("first"),
            after=args.get("after"),
            last=args.get("last"),
            before=args.get("before"),
            reverse=bool(args.get("reverse")),
            wrap=lambda p: _ProductView(self._s, p),
        )

    def order(self, info: GraphQLResolveInfo, id: str) -> _OrderView | None:
        order = self._s._orders.get(_gid_number(id, "Order"))
        return None if order is None else _OrderView(self._s, order)

    def orders(self, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
        terms = _search_terms(args.get("query"))
        items = [
            o
            for o in self._s._orders.values()
            if _matches(
                terms,
                {
                    "title": o.name,
                    "tag": o.tags,
                    "name": o.name,
                    "email": o.email or "",
                    "fulfillment_status": o.fulfillment_status.lower(),
                    "financial_status": o.financial_status.lower(),
                    "id": str(o.id),
                },
            )
        ]
        sort_key = args.get("sortKey") or "PROCESSED_AT"
        keys: dict[str, Callable[[StandInOrder], Any]] = {
            "UPDATED_AT": lambda o: _gql_time(o.updated_at),
            "CREATED_AT": lambda o: _gql_time(o.created_at),
            "PROCESSED_AT": lambda o: _gql_time(o.created_at),
            "ORDER_NUMBER": lambda o: o.number,
        }
        return _paginate(
            items,
            keys.get(sort_key, lambda o: o.id),
            lambda o: o.id,
            first=args.get("first"),
            after=args.get("after"),
            last=args.get("last"),
            before=args.get("before"),
            reverse=bool(args.get("reverse")),
            wrap=lambda o: _OrderView(self._s, o),
        )

    def orderCreate(
        self,
        info: GraphQLResolveInfo,
        order: Mapping[str, Any],
        options: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        return self._s._create_order(order, options or {})

    def orderCancel(
        self,
        info: GraphQLResolveInfo,
        orderId: str,
        reason: str,
        refund: bool,
        restock: bool,
        **_: Any,
    ) -> dict[str, Any]:
        self._s.order_cancel_calls[orderId] += 1
        order = self._s._orders.get(_gid_number(orderId, "Order"))
        if order is None:
            error = {"code": "NOT_FOUND", "field": ["orderId"], "message": "Order not found"}
            return {"job": None, "orderCancelUserErrors": [error], "userErrors": []}
        if order.cancelled_at is not None:
            error = {
                "code": "INVALID",
                "field": ["orderId"],
                "message": "Order has already been cancelled",
            }
            return {"job": None, "orderCancelUserErrors": [error], "userErrors": []}
        if order.fulfillments:  # like Shopify: a fulfilled order is not cancelled
            error = {
                "code": "INVALID",
                "field": ["orderId"],
                "message": "Cannot cancel an order that has been fulfilled",
            }
            return {"job": None, "orderCancelUserErrors": [error], "userErrors": []}
        self._s._webhooks_of_call.extend(self._s._cancel(order, reason, restock))
        job = {"id": f"gid://shopify/Job/{uuid.uuid4()}", "done": True}
        return {"job": job, "orderCancelUserErrors": [], "userErrors": []}


def _gid_number(value: str, kind: str) -> int:
    match = re.fullmatch(rf"gid://shopify/{kind}/(\d+)", value.strip())
    if match is None:
        raise GraphQLError(f"Invalid global id '{value}'")
    return int(match.group(1))


class _ProductView:
    def __init__(self, standin: ShopifyStandIn, product: StandInProduct) -> None:
        self._s = standin
        self._p = product
        self.id = product.gid
        self.legacyResourceId = str(product.id)
        self.title = product.title
        self.handle = product.handle
        self.descriptionHtml = product.description_html
        self.vendor = product.vendor
        self.productType = product.product_type
        self.status = product.status
        self.tags = list(product.tags)
        self.totalInventory = sum(v.inventory_quantity for v in product.variants)
        self.createdAt = _gql_time(product.created_at)
        self.updatedAt = _gql_time(product.updated_at)
        self.featuredImage = (
            {"id": f"gid://shopify/ProductImage/{product.image_id}", "url": product.image_url}
            if product.image_url
            else None
        )

    def description(self, info: GraphQLResolveInfo, truncateAt: int | None = None) -> str:
        text = _strip_html(self._p.description_html)
        if truncateAt is not None and len(text) > truncateAt:
            return text[: max(truncateAt - 3, 0)] + "..."
        return text

    def variants(self, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
        sort_key = args.get("sortKey") or "POSITION"
        keys: dict[str, Callable[[StandInVariant], Any]] = {
            "POSITION": lambda v: v.position,
            "TITLE": lambda v: v.title.casefold(),
            "SKU": lambda v: v.sku or "",
            "INVENTORY_QUANTITY": lambda v: v.inventory_quantity,
        }
        return _paginate(
            self._p.variants,
            keys.get(sort_key, lambda v: v.id),
            lambda v: v.id,
            first=args.get("first"),
            after=args.get("after"),
            last=args.get("last"),
            before=args.get("before"),
            reverse=bool(args.get("reverse")),
            wrap=lambda v: _VariantView(self._s, v),
        )


class _VariantView:
    def __init__(self, standin: ShopifyStandIn, variant: StandInVariant) -> None:
        self._s = standin
        self._v = variant
        product = standin._products.get(variant.product_id)
        self.id = variant.gid
        self.legacyResourceId = str(variant.id)
        self.title = variant.title
        self.displayName = f"{product.title if product else ''} - {variant.title}"
        self.price = _money(variant.price)
        self.compareAtPrice = None
        self.sku = variant.sku
        self.position = variant.position
        self.inventoryQuantity = variant.inventory_quantity
        self.inventoryItem = {
            "id": variant.inventory_item_gid,
            "sku": variant.sku,
            "tracked": True,
            "legacyResourceId": str(variant.inventory_item_id),
        }
        self.createdAt = _gql_time(variant.created_at)
        self.updatedAt = _gql_time(variant.updated_at)

    def product(self, info: GraphQLResolveInfo) -> _ProductView | None:
        product = self._s._products.get(self._v.product_id)
        return None if product is None else _ProductView(self._s, product)


class _OrderView:
    def __init__(self, standin: ShopifyStandIn, order: StandInOrder) -> None:
        self._s = standin
        self._o = order
        self.id = order.gid
        self.legacyResourceId = str(order.id)
        self.name = order.name
        self.email = order.email
        self.note = order.note
        self.tags = list(order.tags)
        self.sourceIdentifier = order.source_identifier
        self.displayFulfillmentStatus = order.fulfillment_status
        self.displayFinancialStatus = order.financial_status
        self.cancelledAt = _gql_time(order.cancelled_at)
        self.cancelReason = order.cancel_reason
        self.closed = order.cancelled_at is not None
        self.createdAt = _gql_time(order.created_at)
        self.processedAt = _gql_time(order.created_at)
        self.updatedAt = _gql_time(order.updated_at)
        address = order.shipping_address
        self.shippingAddress = (
            {
                "address1": address.get("address1"),
                "address2": address.get("address2"),
                "city": address.get("city"),
                "countryCodeV2": address.get("countryCode"),
                "firstName": address.get("firstName"),
                "lastName": address.get("lastName"),
                "name": " ".join(
                    p for p in (address.get("firstName"), address.get("lastName")) if p
                ),
                "phone": address.get("phone"),
                "provinceCode": address.get("provinceCode"),
                "zip": address.get("zip"),
            }
            if address
            else None
        )

    def fulfillments(self, info: GraphQLResolveInfo, first: int | None = None) -> list[Any]:
        chosen = self._o.fulfillments if first is None else self._o.fulfillments[:first]
        return [
            {
                "id": f"gid://shopify/Fulfillment/{f.id}",
                "name": f"{self._o.name}-F{index}",
                "status": "SUCCESS",
                "createdAt": _gql_time(f.created_at),
                "updatedAt": _gql_time(f.created_at),
                "trackingInfo": _TrackingInfo(f),
            }
            for index, f in enumerate(chosen, start=1)
        ]

    def lineItems(self, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
        def wrap(line: StandInLineItem) -> dict[str, Any]:
            variant = self._s._variants.get(line.variant_id or 0)
            return {
                "id": f"gid://shopify/LineItem/{line.id}",
                "title": line.title,
                "quantity": line.quantity,
                "sku": line.sku,
                "variant": _VariantView(self._s, variant) if variant else None,
            }

        return _paginate(
            self._o.line_items,
            lambda line: line.id,
            lambda line: line.id,
            first=args.get("first"),
            after=args.get("after"),
            last=args.get("last"),
            before=args.get("before"),
            reverse=bool(args.get("reverse")),
            wrap=wrap,
        )


class _TrackingInfo:
    """Fulfillment.trackingInfo(first:) as a callable the default resolver invokes."""

    def __init__(self, fulfillment: StandInFulfillment) -> None:
        self._f = fulfillment

    def __call__(self, info: GraphQLResolveInfo, first: int | None = None) -> list[Any]:
        if not self._f.tracking_number:
            return []
        entries = [
            {
                "company": self._f.tracking_company,
                "number": self._f.tracking_number,
                "url": None,
            }
        ]
        return entries if first is None else entries[:first]


# -- query cost ------------------------------------------------------------------------------------


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == name), None)


def _requested_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any],
) -> int:
    """Shopify's requested cost: objects 1, scalars 0, connections 2 + size * node, mutations 10."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    root = (
        schema.mutation_type if operation.operation == OperationType.MUTATION else schema.query_type
    )
    assert root is not None

    def size_of(node: FieldNode) -> int:
        for argument in node.arguments or ():
            if argument.name.value in {"first", "last"}:
                value = value_from_ast(argument.value, GraphQLInt, dict(variables))
                if isinstance(value, int):
                    return max(value, 0)
        return 0

    def fields_of(selection_set: SelectionSetNode | None) -> Iterator[FieldNode]:
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                yield from fields_of(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments.get(selection.name.value)
                if fragment is not None:
                    yield from fields_of(fragment.selection_set)

    def cost(parent: GraphQLNamedType, selection_set: SelectionSetNode | None) -> int:
        if not isinstance(parent, GraphQLObjectType):
            return 0
        total = 0
        for node in fields_of(selection_set):
            definition = parent.fields.get(node.name.value)
            if definition is None:
                continue  # __typename
            named = get_named_type(definition.type)
            if not isinstance(named, GraphQLObjectType):
                continue
            if named.name.endswith("Connection"):
                node_cost = 0
                for part in fields_of(node.selection_set):
                    if part.name.value == "nodes":
                        node_cost = max(node_cost, 1 + cost(_node_type(named), part.selection_set))
                    elif part.name.value == "edges":
                        for inner in fields_of(part.selection_set):
                            if inner.name.value == "node":
                                node_cost = max(
                                    node_cost, 1 + cost(_node_type(named), inner.selection_set)
                                )
                total += 2 + size_of(node) * max(node_cost, 1)
            elif isinstance(get_nullable_type(definition.type), GraphQLList):
                count = size_of(node) or 1
                total += count * (1 + cost(named, node.selection_set))
            else:
                total += 1 + cost(named, node.selection_set)
        return total

    if operation.operation == OperationType.MUTATION:
        return sum(
            MUTATION_COST + cost(get_named_type(root.fields[f.name.value].type), f.selection_set)
            for f in fields_of(operation.selection_set)
            if f.name.value in root.fields
        )
    return cost(root, operation.selection_set)


def _node_type(connection: GraphQLObjectType) -> GraphQLNamedType:
    named: GraphQLNamedType = get_named_type(connection.fields["nodes"].type)
    return named


def _actual_cost(data: Any) -> int:
    """Roughly what Shopify charges after the fact: one point per object returned."""
    if isinstance(data, dict):
        return (0 if "pageInfo" in data else 1) + sum(_actual_cost(v) for v in data.values())
    if isinstance(data, list):
        return sum(_actual_cost(v) for v in data)
    return 0


def _validation_code(error: GraphQLError) -> str:
    if error.message.startswith("Cannot query field"):
        return "undefinedField"
    if "argument" in error.message.lower():
        return "argumentNotAccepted"
    return "GRAPHQL_VALIDATION_FAILED"


def _error_json(error: GraphQLError, code: str | None) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    if code is not None:
        formatted["extensions"] = {**(formatted.get("extensions") or {}), "code": code}
    return formatted
