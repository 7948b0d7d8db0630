"""The bounds of what callers may send: every integer a column stores fits the
column on PostgreSQL as on SQLite, so out-of-range input is a 400 (or, for an id
in a path, a 404), never a database error."""

# ids and stock are INTEGER columns: PostgreSQL's is 32-bit signed
MAX_ID = 2**31 - 1
MAX_QUANTITY = 2**31 - 1
MAX_PAGE_SIZE = 100
# page * size must stay an OFFSET both databases take
MAX_PAGE = 2**31 - 1
MAX_ITEMS_PER_BILL = 100
MAX_IDS_PER_CALL = 1000
MAX_NAME_LENGTH = 200
# an Idempotency-Key, and any header a route declares
MAX_KEY_LENGTH = 200
# revenue windows per answer, and events per stream
MAX_WINDOWS = 1000
