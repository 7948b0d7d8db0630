"""The OAuth2 scopes the gateway's routes ask of a token: each route names one
(``@http(..., scope=BILLS_WRITE)``, ``mesh.http``), or ``PUBLIC`` for none.

Identity providers are configured with these names (docs/security.md), so
they cross a process boundary and live here. ``SCOPES`` says what each one
lets a caller do: ``/openapi.json`` and docs/security.md list it.
"""
PUBLIC = None  # a route anyone may call: no token asked

# what the tokens' "aud" holds (AUTH_AUDIENCE's default), and the local issuer
# `make run` starts (AUTH_ISSUER's default: tools.issuer)
DEFAULT_AUDIENCE = "billing-mesh"
DEFAULT_ISSUER_ADDRESS = "127.0.0.1:8090"

CUSTOMERS_READ = "customers:read"
CUSTOMERS_WRITE = "customers:write"
PRODUCTS_READ = "products:read"
PRODUCTS_WRITE = "products:write"
BILLS_READ = "bills:read"
BILLS_WRITE = "bills:write"
BILLS_CANCEL = "bills:cancel"
ANALYTICS_READ = "analytics:read"
OPERATIONS_READ = "operations:read"
ADMIN = "admin"

SCOPES = {
    CUSTOMERS_READ: "read customers",
    CUSTOMERS_WRITE: "create, change and delete customers",
    PRODUCTS_READ: "read products and their stock",
    PRODUCTS_WRITE: "create, change and delete products",
    BILLS_READ: "read bills and follow them as they are made",
    BILLS_WRITE: "make bills",
    BILLS_CANCEL: "cancel bills",
    ANALYTICS_READ: "read the analytics and follow the revenue",
    OPERATIONS_READ: "read health, the registry and metrics (loopback callers need none)",
    ADMIN: "call allowed service methods through POST /rpc/{service}/{method}",
}
