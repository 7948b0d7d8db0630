-- One database per service declared with one (contracts/services.py;
-- `make generate` writes this file). No service reads another's tables.
-- Run once by the postgres image on its first start (docker-entrypoint-initdb.d).
CREATE DATABASE customers;
CREATE DATABASE inventory;
CREATE DATABASE billing;
