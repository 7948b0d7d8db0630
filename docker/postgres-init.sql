-- One database per service (docs/architecture.md: no service reads another's tables).
-- Run once by the postgres image on its first start (docker-entrypoint-initdb.d).
CREATE DATABASE customers;
CREATE DATABASE inventory;
CREATE DATABASE billing;
