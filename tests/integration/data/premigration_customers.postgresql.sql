-- customers's database as the code before migrations made it on PostgreSQL: the
-- statements metadata.create_all sent. Frozen: never edit (tests/integration/test_db_upgrade.py).

CREATE TABLE customers (
	id SERIAL NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	email VARCHAR(320) NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (email)
);
