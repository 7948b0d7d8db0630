-- inventory's database as the code before migrations made it: metadata.create_all on
-- SQLite, read back from sqlite_master. Frozen: never edit (tests/integration/test_db_upgrade.py
-- upgrades databases made from it; tests/unit/test_migrations.py checks revision 0001 makes the same).

CREATE TABLE products (
	id INTEGER NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	price BIGINT NOT NULL, 
	quantity INTEGER NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT stock_never_negative CHECK (quantity >= 0), 
	CONSTRAINT price_never_negative CHECK (price >= 0)
);

CREATE TABLE stock_reservations (
	id VARCHAR(36) NOT NULL, 
	status VARCHAR(10) NOT NULL, 
	items JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
