-- P4: the compliance evaluator's records (compliance-events topic, docs/adr/0007) folded into
-- violations (one row per violation, from its opening to its resolution; a violation that comes
-- back is a new row) and each resource's current judgement.
CREATE TABLE violations (
    tenant          text        NOT NULL,
    resource_id     uuid        NOT NULL,
    -- the resource's compliance version of the opening record: identifies this violation
    opened_version  bigint      NOT NULL,
    policy_id       text        NOT NULL,
    tag_key         text        NOT NULL,
    severity        text        NOT NULL,
    problem         text        NOT NULL,
    message         text        NOT NULL,
    remediation     text        NOT NULL,
    -- pending | due | escalated | resolved
    stage           text        NOT NULL,
    opened_at       timestamptz NOT NULL,
    due_at          timestamptz NOT NULL,
    escalate_to     text,
    escalate_at     timestamptz,
    became_due_at   timestamptz,
    escalated_at    timestamptz,
    resolved_at     timestamptz,
    resolution      text,
    PRIMARY KEY (tenant, resource_id, opened_version)
);
CREATE INDEX violations_open ON violations (tenant, policy_id, tag_key) WHERE resolved_at IS NULL;
CREATE INDEX violations_by_resource ON violations (tenant, resource_id) WHERE resolved_at IS NULL;
CREATE INDEX violations_by_time ON violations (tenant, opened_at, resolved_at);

CREATE TABLE resource_compliance (
    tenant              text        NOT NULL,
    resource_id         uuid        NOT NULL,
    applicable_policies text[]      NOT NULL,
    violated_policies   text[]      NOT NULL,
    score               float8      NOT NULL,
    policies_version    bigint      NOT NULL,
    changed_at          timestamptz NOT NULL,
    PRIMARY KEY (tenant, resource_id)
);
