"""The stand-in's GraphQL schema: a faithful subset of Shopify's Admin API (same names)."""

from __future__ import annotations

from graphql import (
    GraphQLSchema,
    build_schema,
)

_COUNTRY_CODES = (
    "AC AD AE AF AG AI AL AM AN AO AR AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO "
    "BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ "
    "DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ "
    "GR GS GT GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI "
    "KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MK ML MM MN MO "
    "MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK "
    "PL PM PN PS PT PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST "
    "SV SX SY SZ TA TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC "
    "VE VG VN VU WF WS XK YE YT ZA ZM ZW ZZ"
)

# A subset of Shopify's Admin GraphQL schema: names and types as Shopify has them.
SCHEMA_SDL = (
    """
schema { query: QueryRoot mutation: Mutation }

scalar DateTime
scalar Money
scalar URL
scalar HTML

type PageInfo {
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
  endCursor: String
}

enum ProductStatus { ACTIVE ARCHIVED DRAFT }
enum ProductSortKeys {
  CREATED_AT ID INVENTORY_TOTAL PRODUCT_TYPE PUBLISHED_AT RELEVANCE TITLE UPDATED_AT VENDOR
}
enum ProductVariantSortKeys {
  FULL_TITLE ID INVENTORY_LEVELS_AVAILABLE INVENTORY_MANAGEMENT INVENTORY_POLICY
  INVENTORY_QUANTITY NAME POPULAR POSITION RELEVANCE SKU TITLE
}
enum OrderSortKeys {
  CREATED_AT CUSTOMER_NAME DESTINATION FINANCIAL_STATUS FULFILLMENT_STATUS ID ORDER_NUMBER
  PO_NUMBER PROCESSED_AT RELEVANCE TOTAL_ITEMS_QUANTITY TOTAL_PRICE UPDATED_AT
}
enum OrderDisplayFulfillmentStatus {
  FULFILLED IN_PROGRESS ON_HOLD OPEN PARTIALLY_FULFILLED PENDING_FULFILLMENT REQUEST_DECLINED
  RESTOCKED SCHEDULED UNFULFILLED
}
enum OrderDisplayFinancialStatus {
  AUTHORIZED EXPIRED PAID PARTIALLY_PAID PARTIALLY_REFUNDED PENDING REFUNDED VOIDED
}
enum OrderCreateFinancialStatus {
  AUTHORIZED EXPIRED PAID PARTIALLY_PAID PARTIALLY_REFUNDED PENDING REFUNDED VOIDED
}
enum OrderCreateInputsInventoryBehavior {
  BYPASS DECREMENT_IGNORING_POLICY DECREMENT_OBEYING_POLICY
}
enum OrderCancelReason { CUSTOMER DECLINED FRAUD INVENTORY OTHER STAFF }
enum FulfillmentStatus { CANCELLED ERROR FAILURE OPEN PENDING SUCCESS }
enum CurrencyCode { EUR GBP USD }
"""
    + "enum CountryCode { "
    + _COUNTRY_CODES
    + " }\n"
    + """
type Image {
  id: ID
  altText: String
  url: URL!
  width: Int
  height: Int
}

type InventoryItem {
  id: ID!
  sku: String
  tracked: Boolean!
  legacyResourceId: String!
}

type ProductVariant {
  id: ID!
  legacyResourceId: String!
  title: String!
  displayName: String!
  price: Money!
  compareAtPrice: Money
  sku: String
  position: Int!
  inventoryQuantity: Int
  inventoryItem: InventoryItem!
  product: Product!
  createdAt: DateTime!
  updatedAt: DateTime!
}

type ProductVariantEdge { cursor: String! node: ProductVariant! }
type ProductVariantConnection {
  edges: [ProductVariantEdge!]!
  nodes: [ProductVariant!]!
  pageInfo: PageInfo!
}

type Product {
  id: ID!
  legacyResourceId: String!
  title: String!
  handle: String!
  description(truncateAt: Int): String!
  descriptionHtml: HTML!
  vendor: String!
  productType: String!
  status: ProductStatus!
  tags: [String!]!
  totalInventory: Int!
  featuredImage: Image
  createdAt: DateTime!
  updatedAt: DateTime!
  variants(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
    sortKey: ProductVariantSortKeys = POSITION
  ): ProductVariantConnection!
}

type ProductEdge { cursor: String! node: Product! }
type ProductConnection {
  edges: [ProductEdge!]!
  nodes: [Product!]!
  pageInfo: PageInfo!
}

type FulfillmentTrackingInfo {
  company: String
  number: String
  url: URL
}

type Fulfillment {
  id: ID!
  name: String!
  status: FulfillmentStatus!
  createdAt: DateTime!
  updatedAt: DateTime!
  trackingInfo(first: Int): [FulfillmentTrackingInfo!]!
}

type MailingAddress {
  address1: String
  address2: String
  city: String
  countryCodeV2: CountryCode
  firstName: String
  lastName: String
  name: String
  phone: String
  provinceCode: String
  zip: String
}

type LineItem {
  id: ID!
  title: String!
  quantity: Int!
  sku: String
  variant: ProductVariant
}

type LineItemEdge { cursor: String! node: LineItem! }
type LineItemConnection {
  edges: [LineItemEdge!]!
  nodes: [LineItem!]!
  pageInfo: PageInfo!
}

type Order {
  id: ID!
  legacyResourceId: String!
  name: String!
  email: String
  note: String
  tags: [String!]!
  sourceIdentifier: String
  displayFulfillmentStatus: OrderDisplayFulfillmentStatus!
  displayFinancialStatus: OrderDisplayFinancialStatus
  cancelledAt: DateTime
  cancelReason: OrderCancelReason
  closed: Boolean!
  createdAt: DateTime!
  processedAt: DateTime!
  updatedAt: DateTime!
  shippingAddress: MailingAddress
  fulfillments(first: Int): [Fulfillment!]!
  lineItems(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
  ): LineItemConnection!
}

type OrderEdge { cursor: String! node: Order! }
type OrderConnection {
  edges: [OrderEdge!]!
  nodes: [Order!]!
  pageInfo: PageInfo!
}

type Shop {
  name: String!
  myshopifyDomain: String!
  currencyCode: CurrencyCode!
}

input MailingAddressInput {
  address1: String
  address2: String
  city: String
  company: String
  countryCode: CountryCode
  firstName: String
  lastName: String
  phone: String
  provinceCode: String
  zip: String
}

input OrderCreateLineItemInput {
  variantId: ID
  quantity: Int!
  title: String
  sku: String
  requiresShipping: Boolean
}

input OrderCreateOrderInput {
  billingAddress: MailingAddressInput
  buyerAcceptsMarketing: Boolean
  currency: CurrencyCode
  email: String
  financialStatus: OrderCreateFinancialStatus
  lineItems: [OrderCreateLineItemInput!]
  note: String
  phone: String
  processedAt: DateTime
  shippingAddress: MailingAddressInput
  sourceIdentifier: String
  sourceName: String
  tags: [String!]
  test: Boolean
}

input OrderCreateOptionsInput {
  inventoryBehaviour: OrderCreateInputsInventoryBehavior = BYPASS
  sendFulfillmentReceipt: Boolean = false
  sendReceipt: Boolean = false
}

type OrderCreateUserError {
  field: [String!]
  message: String!
}

type OrderCreatePayload {
  order: Order
  userErrors: [OrderCreateUserError!]!
}

enum OrderCancelUserErrorCode { INVALID NOT_FOUND NO_REFUND_PERMISSION }

type OrderCancelUserError {
  code: OrderCancelUserErrorCode
  field: [String!]
  message: String!
}

type UserError {
  field: [String!]
  message: String!
}

type Job {
  id: ID!
  done: Boolean!
}

type OrderCancelPayload {
  job: Job
  orderCancelUserErrors: [OrderCancelUserError!]!
  userErrors: [UserError!]!
}

type QueryRoot {
  shop: Shop!
  product(id: ID!): Product
  products(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
    sortKey: ProductSortKeys = ID
    query: String
  ): ProductConnection!
  productVariant(id: ID!): ProductVariant
  order(id: ID!): Order
  orders(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
    sortKey: OrderSortKeys = PROCESSED_AT
    query: String
  ): OrderConnection!
}

type Mutation {
  orderCreate(order: OrderCreateOrderInput!, options: OrderCreateOptionsInput): OrderCreatePayload
  orderCancel(
    orderId: ID!
    reason: OrderCancelReason!
    refund: Boolean!
    restock: Boolean!
    notifyCustomer: Boolean = false
    staffNote: String
  ): OrderCancelPayload
}
"""
)

_SCHEMA: GraphQLSchema | None = None


def admin_schema() -> GraphQLSchema:
    """The stand-in's GraphQL schema (built once)."""
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = build_schema(SCHEMA_SDL)
    return _SCHEMA
