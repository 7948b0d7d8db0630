-- inventory's database as the code before migrations made it on PostgreSQL: the
-- statements metadata.create_all sent. Frozen: never edit (tests/integration/test_db_upgrade.py).

CREATE TABLE products (
	id SERIAL NOT NULL, 
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
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);
