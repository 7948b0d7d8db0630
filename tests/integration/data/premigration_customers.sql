-- customers's database as the code before migrations made it: metadata.create_all on
-- SQLite, read back from sqlite_master. Frozen: never edit (tests/integration/test_db_upgrade.py
-- upgrades databases made from it; tests/unit/test_migrations.py checks revision 0001 makes the same).

CREATE TABLE customers (
	id INTEGER NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	email VARCHAR(320) NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (email)
);
