-- P2: derived tags and their provenance, re-derivation progress, tagging configurations.
--
-- Native tags still never appear as tags here. The one native tag a derived value was normalized
-- from is kept as that value's provenance (explain: "environment=production because native
-- Env=' PROD ' via the alias prod → production"), nothing more.

ALTER TABLE virtual_tags
    ADD COLUMN origin           text,     -- native | rule | default (derived values); NULL for people's and models'
    ADD COLUMN rule_id          text,
    ADD COLUMN rule_set_version bigint,   -- configuration version the value was derived under
    ADD COLUMN native_key       text,
    ADD COLUMN native_value     text,
    ADD COLUMN key_mapping      text,     -- canonical | alias
    ADD COLUMN value_mapping    text;     -- kept | alias | case

-- A derivation event changes several keys at once: one audit row per changed key.
ALTER TABLE tag_audit
    ADD COLUMN change_index     integer NOT NULL DEFAULT 0,
    ADD COLUMN origin           text,
    ADD COLUMN rule_id          text,
    ADD COLUMN rule_set_version bigint,
    ADD COLUMN native_key       text,
    ADD COLUMN native_value     text,
    ADD COLUMN key_mapping      text,
    ADD COLUMN value_mapping    text;
ALTER TABLE tag_audit DROP CONSTRAINT tag_audit_pkey;
ALTER TABLE tag_audit ADD PRIMARY KEY (event_id, change_index);
-- History of one resource's key (as-of reads, explain).
CREATE INDEX tag_audit_by_resource_key ON tag_audit (tenant, resource_id, tag_key, aggregate_version);
-- Everything one configuration change caused (a re-derivation job's events share its correlation id).
CREATE INDEX tag_audit_by_correlation ON tag_audit (tenant, correlation_id);

-- Progress of re-derivation jobs, one row per (job, partition), from the markers the command side
-- appends after the events they count: a row marked done means its events are in this database.
CREATE TABLE rederivation_progress (
    tenant           text        NOT NULL,
    job_id           uuid        NOT NULL,
    rule_set_version bigint      NOT NULL,
    log_partition    integer     NOT NULL,
    partitions       integer     NOT NULL,   -- the job is done when this many partitions report done
    processed        bigint      NOT NULL,
    total            bigint      NOT NULL,
    changed          bigint      NOT NULL,
    done             boolean     NOT NULL,
    actor            text        NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant, job_id, log_partition)
);

-- Tagging configurations (tag schema, mappings, rules, defaults) from the tagging-config topic.
CREATE TABLE tagging_configs (
    tenant      text        NOT NULL,
    version     bigint      NOT NULL,
    document    jsonb       NOT NULL,
    change      text        NOT NULL,
    change_kind text        NOT NULL,
    rule_ids    text[]      NOT NULL,
    actor       text        NOT NULL,
    event_id    uuid        NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (tenant, version)
);
