-- pgbench script: a commit under the global row lock, the gapless counter bumped in the transaction (the chosen design).
BEGIN;
SELECT last_seq FROM pgb.g WHERE id = 1 FOR UPDATE \gset
INSERT INTO pgb.log_locked VALUES (:last_seq + 1, '\x0102030405060708');
UPDATE pgb.g SET last_seq = :last_seq + 1 WHERE id = 1;
COMMIT;
