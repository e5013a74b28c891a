-- Tables for the commit-ordering experiment (see src/store/postgres/NOTES.md): run once with psql -f.
DROP SCHEMA IF EXISTS pgb CASCADE;
CREATE SCHEMA pgb;
CREATE TABLE pgb.g (id int PRIMARY KEY, last_seq bigint NOT NULL);
INSERT INTO pgb.g VALUES (1, 0);
CREATE TABLE pgb.log_locked (seq bigint PRIMARY KEY, data bytea NOT NULL);
CREATE SEQUENCE pgb.s;
CREATE TABLE pgb.log_seq (seq bigint PRIMARY KEY DEFAULT nextval('pgb.s'), data bytea NOT NULL);
