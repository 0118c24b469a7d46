-- P4: every version of every tenant's compliance policies document (the compliance-policies
-- topic), as for tagging configurations. The query API serves the policies and their history here.
CREATE TABLE compliance_policies (
    tenant      text        NOT NULL,
    version     bigint      NOT NULL,
    document    jsonb       NOT NULL,
    change      text        NOT NULL,
    change_kind text        NOT NULL,
    policy_ids  text[]      NOT NULL,
    actor       text        NOT NULL,
    event_id    uuid        NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (tenant, version)
);
