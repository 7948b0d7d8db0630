-- billing's database as the code before migrations made it on PostgreSQL: the
-- statements metadata.create_all sent. Frozen: never edit (tests/integration/test_db_upgrade.py).

CREATE TABLE bills (
	id SERIAL NOT NULL, 
	billing_date TIMESTAMP WITH TIME ZONE NOT NULL, 
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
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	dispatched_at TIMESTAMP WITH TIME ZONE, 
	PRIMARY KEY (event_id)
);

CREATE INDEX ix_outbox_events_created_at ON outbox_events (created_at);

CREATE TABLE product_items (
	id SERIAL NOT NULL, 
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
	key VARCHAR(200) NOT NULL, 
	request_hash VARCHAR(64) NOT NULL, 
	bill_id INTEGER NOT NULL, 
	PRIMARY KEY (key), 
	FOREIGN KEY(bill_id) REFERENCES bills (id)
);
