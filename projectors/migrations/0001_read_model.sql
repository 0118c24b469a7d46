-- The Postgres read model. Owned by the postgres projector (the only writer); read by the query API.
-- Everything here can be rebuilt from the event log. Native cloud tags are deliberately absent:
-- no query endpoint may ever return them, so they are never projected here.

CREATE TABLE resources (
    tenant            text        NOT NULL,
    id                uuid        NOT NULL,   -- vtag aggregate id (UUIDv5 of tenant, provider, cloud id)
    provider          text        NOT NULL,
    cloud_resource_id text        NOT NULL,   -- ARN / Azure resource id / GCP name
    resource_type     text        NOT NULL,
    name              text        NOT NULL,
    account_id        text        NOT NULL,
    region            text        NOT NULL,
    metadata          jsonb       NOT NULL DEFAULT '{}',
    version           bigint      NOT NULL,   -- aggregate version folded so far (version guard)
    first_seen_at     timestamptz NOT NULL,
    last_changed_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX resources_by_cloud_id ON resources (tenant, cloud_resource_id, provider);

CREATE TABLE virtual_tags (
    tenant      text             NOT NULL,
    resource_id uuid             NOT NULL,
    tag_key     text             NOT NULL,
    tag_value   text             NOT NULL,
    source      text             NOT NULL,   -- inferred | rule_based | ai_suggested | user_confirmed | manual
    confidence  double precision NOT NULL,
    created_by  text             NOT NULL,   -- actor who first set this key
    updated_by  text             NOT NULL,   -- actor of the latest change
    created_at  timestamptz      NOT NULL,
    updated_at  timestamptz      NOT NULL,
    version     bigint           NOT NULL,   -- aggregate version of the event that last set it
    event_id    uuid             NOT NULL,   -- that event (provenance: look it up in tag_audit)
    PRIMARY KEY (tenant, resource_id, tag_key)
);
CREATE INDEX virtual_tags_by_value ON virtual_tags (tenant, tag_key, tag_value);

-- One row per event, derived from the log: the audit trail.
CREATE TABLE tag_audit (
    event_id          uuid             PRIMARY KEY,
    tenant            text             NOT NULL,
    resource_id       uuid             NOT NULL,
    aggregate_version bigint           NOT NULL,
    action            text             NOT NULL,   -- the event type
    tag_key           text,
    old_value         text,
    new_value         text,
    source            text,
    confidence        double precision,
    performed_by      text             NOT NULL,
    causation_id      uuid             NOT NULL,
    correlation_id    uuid             NOT NULL,
    occurred_at       timestamptz      NOT NULL,
    recorded_at       timestamptz      NOT NULL,
    log_partition     integer          NOT NULL,
    log_offset        bigint           NOT NULL
);
CREATE INDEX tag_audit_by_time ON tag_audit (tenant, recorded_at, event_id);
CREATE INDEX tag_audit_by_resource ON tag_audit (tenant, resource_id, recorded_at, event_id);

-- Where each projector is in the log. Written in the same transaction as the rows it covers.
CREATE TABLE projector_checkpoints (
    projector   text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    next_offset bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projector, topic, partition)
);
