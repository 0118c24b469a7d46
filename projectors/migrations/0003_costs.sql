-- Cost read model (P3): FOCUS imports folded from the cost topic. Imports are immutable once
-- committed; a later import of the same ledger (billing account × billing period) supersedes the
-- earlier one, which stays for "as it was reported at" reads.

CREATE TABLE cost_imports (
    tenant                       text           NOT NULL,
    import_id                    uuid           NOT NULL,
    ledger_id                    uuid           NOT NULL,
    version                      bigint         NOT NULL,   -- ledger version of the commit
    provider_name                text           NOT NULL,
    billing_account_id           text           NOT NULL,
    billing_account_name         text           NOT NULL,
    period_start                 date           NOT NULL,
    period_end                   date           NOT NULL,   -- exclusive
    currency                     text           NOT NULL,
    fingerprint                  text           NOT NULL,
    source                       text           NOT NULL,
    rows                         bigint         NOT NULL,
    chunks                       integer        NOT NULL,
    resource_lines               bigint         NOT NULL,
    pool_lines                   bigint         NOT NULL,
    resources                    bigint         NOT NULL,
    billed_cost                  numeric(38,10) NOT NULL,
    effective_cost               numeric(38,10) NOT NULL,
    list_cost                    numeric(38,10) NOT NULL,
    unallocatable_billed_cost    numeric(38,10) NOT NULL,
    unallocatable_effective_cost numeric(38,10) NOT NULL,
    unallocatable_list_cost      numeric(38,10) NOT NULL,
    replaces                     uuid,
    first_day                    date,                      -- the earliest and latest charge day of its lines
    last_day                     date,
    imported_by                  text           NOT NULL,
    imported_at                  timestamptz    NOT NULL,   -- reported from then on
    superseded_at                timestamptz,               -- reported until then
    superseded_by                uuid,
    PRIMARY KEY (tenant, import_id)
);
CREATE INDEX cost_imports_by_ledger ON cost_imports (tenant, ledger_id, version);
CREATE INDEX cost_imports_current ON cost_imports (tenant) WHERE superseded_at IS NULL;

-- Cost of a resource per day: one row per import, resource, calendar month, service and charge
-- category; the days are packed as 31 little-endian signed 64-bit counts of 10^-10 of the import's
-- currency (day 1 first; days the month lacks are 0). Rows of an import become visible when its
-- cost_imports row exists (the commit); rows of an import never committed are never read.
CREATE TABLE resource_cost_months (
    tenant          text  NOT NULL,
    import_id       uuid  NOT NULL,
    resource_id     uuid  NOT NULL,
    month           date  NOT NULL,
    service_name    text  NOT NULL,
    charge_category text  NOT NULL,
    billed          bytea NOT NULL,
    effective       bytea NOT NULL,
    list            bytea NOT NULL,
    PRIMARY KEY (tenant, import_id, resource_id, month, service_name, charge_category)
);

-- The chunks of each import received so far: a commit makes its import visible only when every
-- chunk it counts is here (a dead-lettered chunk must not leave a partial import in force).
CREATE TABLE cost_import_chunks (
    tenant    text    NOT NULL,
    import_id uuid    NOT NULL,
    chunk     integer NOT NULL,
    first_day date,
    last_day  date,
    PRIMARY KEY (tenant, import_id, chunk)
);

-- Cost without a resource (fees, support, tax, credits, other providers): unallocatable pools.
CREATE TABLE pool_costs (
    tenant          text           NOT NULL,
    import_id       uuid           NOT NULL,
    day             date           NOT NULL,
    charge_category text           NOT NULL,
    service_name    text           NOT NULL,
    sub_account_id  text           NOT NULL,
    reason          text           NOT NULL,
    billed_cost     numeric(38,10) NOT NULL,
    effective_cost  numeric(38,10) NOT NULL,
    list_cost       numeric(38,10) NOT NULL,
    PRIMARY KEY (tenant, import_id, day, charge_category, service_name, sub_account_id, reason)
);

-- Every version of every tenant's shared-cost split rules (allocations use the version in force at
-- the instant they describe).
CREATE TABLE cost_split_configs (
    tenant      text        NOT NULL,
    version     bigint      NOT NULL,
    document    jsonb       NOT NULL,
    actor       text        NOT NULL,
    event_id    uuid        NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (tenant, version)
);

-- What rules and cost-threshold policies read: the latest monthly cost a billing import measured.
ALTER TABLE resources
    ADD COLUMN monthly_cost          numeric(20,2),
    ADD COLUMN monthly_cost_currency text,
    ADD COLUMN monthly_cost_as_of    date;
