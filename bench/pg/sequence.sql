-- pgbench script: a commit taking its seq from a SEQUENCE, no lock (the gap-aware alternative, without its readers).
BEGIN;
INSERT INTO pgb.log_seq (data) VALUES ('\x0102030405060708');
COMMIT;
