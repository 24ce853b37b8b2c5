-- Events PostgreSQL refused as they were (text it cannot hold, a value out of range): the trail
-- keeps a storable copy marked "quarantined", and this table the event exactly as the run
-- recorded it, as ASCII JSON (every character escaped), so nothing is lost.
CREATE TABLE IF NOT EXISTS {quarantine} (
    approval_id text NOT NULL,
    seq         integer NOT NULL,
    error       text NOT NULL,
    event       text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (approval_id, seq)
);
