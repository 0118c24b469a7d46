-- The herald's delivery ledger (docs/herald.md; docs/adr/0007 §5), in the herald's own schema
-- (`herald`, the connection's search_path): its migrations table is its own too.

-- Every alertable transition the herald read, once per event id: a record the evaluator appended
-- twice (same event id) is routed once.
CREATE TABLE transitions (
    event_id      uuid        PRIMARY KEY,
    tenant        text        NOT NULL,
    resource_id   uuid        NOT NULL,
    policy_id     text        NOT NULL,
    tag_key       text        NOT NULL,
    transition    text        NOT NULL CHECK (transition IN ('due', 'escalated', 'resolved')),
    log_partition integer     NOT NULL,
    log_offset    bigint      NOT NULL,
    deliveries    integer     NOT NULL,   -- channels it was routed to (0: no route matched)
    read_at       timestamptz NOT NULL
);

-- One row per (transition × channel), inserted as 'sending' before anything is sent.
--   sending: recorded, being sent (after a crash: re-sent with the same delivery id)
--   sent:    the receiver answered 2xx / the SMTP server 250; never sent again
--   failed:  the last attempt failed; next_attempt_at says when the next one is due
--   dead:    max attempts reached; kept with its last error (replay: docs/herald.md)
CREATE TABLE deliveries (
    delivery_id        uuid        PRIMARY KEY,   -- UUIDv5 of (event id, channel id)
    seq                bigint      GENERATED ALWAYS AS IDENTITY,  -- recording order (sends keep it per channel)
    event_id           uuid        NOT NULL REFERENCES transitions (event_id),
    channel_id         text        NOT NULL,
    channel_kind       text        NOT NULL,   -- webhook | slack | email
    tenant             text        NOT NULL,
    escalation_contact text,                   -- email: the violation's escalation address, when a route adds it
    payload            json        NOT NULL,   -- the alert, exactly the webhook body; every attempt sends it
    status             text        NOT NULL CHECK (status IN ('sending', 'sent', 'failed', 'dead')),
    attempts           integer     NOT NULL DEFAULT 0,   -- attempts whose outcome is known
    next_attempt_at    timestamptz,
    last_error         text,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    sent_at            timestamptz,
    UNIQUE (event_id, channel_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'failed';
CREATE INDEX deliveries_unsettled ON deliveries (status) WHERE status IN ('sending', 'dead');
CREATE INDEX deliveries_by_tenant ON deliveries (tenant, created_at);

-- Where the herald is in the compliance-events topic, per partition: moved in the same
-- transaction that records a batch's transitions and deliveries.
CREATE TABLE consumer_offsets (
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    next_offset bigint      NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (topic, partition)
);
