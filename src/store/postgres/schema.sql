-- The PostgreSQL store's tables (src/store/postgres): the same key spaces as the sled store
-- (src/store/keys.rs), one table each. Created in the connection's current schema (the first
-- of its search_path), so several stores can share one database in different schemas.
-- Every statement is idempotent: `PgStore::open` runs this file on every start, under an
-- advisory lock so that instances starting together do not race.

-- The one row every commit locks and bumps: the last global sequence number and the last
-- action id. Taking it FOR UPDATE first serialises writers across every service instance,
-- which makes the sequence gapless and in commit order (I5) and lets apply functions read
-- projection rows other streams share without losing an update.
CREATE TABLE IF NOT EXISTS lc_global (
    id          integer PRIMARY KEY CHECK (id = 1),
    last_seq    bigint  NOT NULL,
    last_action bigint  NOT NULL
);
INSERT INTO lc_global (id, last_seq, last_action) VALUES (1, 0, 0) ON CONFLICT (id) DO NOTHING;

-- The event log (sled `L` and the stream index `S`). The unique (concept, stream, version) is
-- the last line of defence of optimistic concurrency: two appends at one version cannot both
-- commit.
CREATE TABLE IF NOT EXISTS lc_log (
    seq       bigint PRIMARY KEY,
    concept   text   NOT NULL,
    stream    text   NOT NULL,
    version   bigint NOT NULL,
    kind      text   NOT NULL,
    action    bigint NOT NULL,
    at_micros bigint NOT NULL,
    data      bytea  NOT NULL,
    CONSTRAINT lc_log_stream_version UNIQUE (concept, stream, version)
);

-- Stream heads (sled `H`).
CREATE TABLE IF NOT EXISTS lc_head (
    concept text   NOT NULL,
    stream  text   NOT NULL,
    version bigint NOT NULL,
    PRIMARY KEY (concept, stream)
);

-- Projection rows (sled `P`): the key is the whole sled key (`P` concept 0 key…), so a dump of
-- this store compares byte for byte with a dump of a sled store. bytea sorts bytewise.
CREATE TABLE IF NOT EXISTS lc_proj (
    key   bytea PRIMARY KEY,
    value bytea NOT NULL
);

-- Projection checkpoints (sled `C`): the last seq applied to a concept's projections.
CREATE TABLE IF NOT EXISTS lc_checkpoint (
    concept text   PRIMARY KEY,
    seq     bigint NOT NULL
);

-- The engine's action records (sled `R`, and `F` through the flow index).
CREATE TABLE IF NOT EXISTS lc_record (
    id        bigint PRIMARY KEY,
    flow      uuid   NOT NULL,
    at_micros bigint NOT NULL,
    body      bytea  NOT NULL
);
CREATE INDEX IF NOT EXISTS lc_record_flow ON lc_record (flow, id);

-- Fire-once guards and idempotency keys (sled `X` and `I`), keyed as in sled. The primary key
-- is what makes a guard fire once across instances. `largest` is a fire guard's largest
-- matched action id (for compaction).
CREATE TABLE IF NOT EXISTS lc_guard (
    key     bytea  PRIMARY KEY,
    value   bytea  NOT NULL,
    largest bigint
);
