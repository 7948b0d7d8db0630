"""Plain libraries: what needs no nameko (the tagged cache, paging queries,
input validation, column types, the config loader). They may use ``contracts``
(the error table, money on the wire), never ``mesh`` or ``services``."""
