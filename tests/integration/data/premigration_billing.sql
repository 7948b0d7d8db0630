-- billing's database as the code before migrations made it: metadata.create_all on
-- SQLite, read back from sqlite_master. Frozen: never edit (tests/integration/test_db_upgrade.py
-- upgrades databases made from it; tests/unit/test_migrations.py checks revision 0001 makes the same).

CREATE TABLE bills (
	id INTEGER NOT NULL, 
	billing_date DATETIME NOT NULL, 
	customer_id INTEGER NOT NULL, 
	reservation_id VARCHAR(36), 
	PRIMARY KEY (id), 
	UNIQUE (reservation_id)
);

CREATE INDEX ix_bills_customer_id ON bills (customer_id);

CREATE TABLE outbox_events (
	event_id VARCHAR(36) NOT NULL, 
	event_type VARCHAR(50) NOT NULL, 
	payload JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	dispatched_at DATETIME, 
	PRIMARY KEY (event_id)
);

CREATE INDEX ix_outbox_events_created_at ON outbox_events (created_at);

CREATE TABLE product_items (
	id INTEGER NOT NULL, 
	bill_id INTEGER NOT NULL, 
	product_id INTEGER NOT NULL, 
	quantity INTEGER NOT NULL, 
	unit_price BIGINT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT item_quantity_positive CHECK (quantity > 0), 
	FOREIGN KEY(bill_id) REFERENCES bills (id)
);

CREATE INDEX ix_product_items_product_id ON product_items (product_id);

CREATE INDEX ix_product_items_bill_id ON product_items (bill_id);

CREATE TABLE idempotency_keys (
	"key" VARCHAR(200) NOT NULL, 
	request_hash VARCHAR(64) NOT NULL, 
	bill_id INTEGER NOT NULL, 
	PRIMARY KEY ("key"), 
	FOREIGN KEY(bill_id) REFERENCES bills (id)
);
