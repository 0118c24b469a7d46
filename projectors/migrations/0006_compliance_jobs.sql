-- Progress of evaluation jobs (rechecks, and the pass after a policies change), one row per
-- (job, partition of the compliance-events topic), from the markers the evaluator appends after
-- the decisions they count: a row marked done means its partition's decisions are here.
CREATE TABLE compliance_job_progress (
    tenant           text        NOT NULL,
    job_id           uuid        NOT NULL,
    kind             text        NOT NULL,   -- recheck | policies_changed
    policies_version bigint      NOT NULL,
    log_partition    integer     NOT NULL,
    partitions       integer     NOT NULL,
    processed        bigint      NOT NULL,
    total            bigint      NOT NULL,
    changed          bigint      NOT NULL,
    done             boolean     NOT NULL,
    actor            text        NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant, job_id, log_partition)
);
