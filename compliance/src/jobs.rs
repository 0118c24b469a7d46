//! Evaluation jobs: a recheck someone asked for, or the retroactive pass after a tenant's policies
//! changed. A job judges the resources it selects partition by partition, in chunks, and after
//! each chunk's decisions appends a progress marker to that partition — so a reader that has folded
//! a marker has folded what it counts, and `GET /api/v1/compliance/jobs/{id}` shows the job moving.
//! Every partition reports, even with nothing to judge: the job is done when all of them say so.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use uuid::Uuid;
use vtag_domain::compliance::{ComplianceBook, Selection};
use vtag_domain::{Actor, ResourceId, TenantId};
use vtag_eventlog::compliance::{policies_job_id, JobKind, JobProgress, RecheckRequest};
use vtag_eventlog::{partition_of, ConfigRecord};

use crate::Log;

/// Resources judged between two progress markers: small enough that progress moves every few
/// hundred milliseconds on a million resources, large enough that markers are a rounding error.
const CHUNK: usize = 10_000;

/// Chunks sent but not yet acknowledged while the next is judged.
const IN_FLIGHT: usize = 3;

/// Ids of the progress markers: one per job, partition and count.
const MARKER_IDS: Uuid = Uuid::from_u128(0x51a7_0e3c_9d24_4b86_8f1e_c6b3_72d9_0a15);

pub struct Job {
    pub id: Uuid,
    pub kind: JobKind,
    pub tenant: TenantId,
    /// The policies version a policies-change job judges under (a recheck: whatever is in force).
    version: u64,
    selection: Selection,
    actor: Actor,
    /// The record that asked for it (the decisions' causation).
    cause: Uuid,
}

impl Job {
    pub fn after_policies(record: &ConfigRecord) -> Self {
        Self {
            id: policies_job_id(&record.tenant, record.version),
            kind: JobKind::PoliciesChanged,
            tenant: record.tenant.clone(),
            version: record.version,
            selection: Selection::default(),
            actor: record.actor.clone(),
            cause: record.event_id,
        }
    }

    pub fn recheck(request: &RecheckRequest) -> Self {
        Self {
            id: request.job_id,
            kind: JobKind::Recheck,
            tenant: request.tenant.clone(),
            version: 0,
            selection: request.selection(),
            actor: request.actor.clone(),
            cause: request.event_id,
        }
    }
}

/// Which partitions of which jobs reported done (read back while rebuilding).
#[derive(Default)]
pub struct Finished(HashMap<Uuid, HashSet<i32>>);

impl Finished {
    pub fn record(&mut self, p: &JobProgress) {
        if p.done {
            self.0.entry(p.job_id).or_default().insert(p.partition);
        }
    }

    pub fn all_done(&self, job: Uuid, partitions: i32) -> bool {
        self.0.get(&job).is_some_and(|done| (0..partitions).all(|p| done.contains(&p)))
    }
}

/// The jobs asked for, each with whether a later policies change of its tenant superseded it (its
/// pass is covered by the later one's). Only an interrupted job is run again, so this is about the
/// few a crash cut short — and about logs written before jobs reported progress.
pub fn latest_first(asked: &[Job]) -> Vec<(&Job, bool)> {
    let mut latest: HashMap<&TenantId, usize> = HashMap::new();
    for (i, job) in asked.iter().enumerate().filter(|(_, j)| j.kind == JobKind::PoliciesChanged) {
        latest.insert(&job.tenant, i);
    }
    asked
        .iter()
        .enumerate()
        .map(|(i, job)| (job, job.kind == JobKind::PoliciesChanged && latest.get(&job.tenant).is_some_and(|l| *l != i)))
        .collect()
}

/// Ends a superseded job without judging: every partition reports done with nothing judged.
pub async fn close(log: &Log<'_>, job: &Job) -> anyhow::Result<()> {
    for partition in 0..log.partitions() {
        let marker = JobProgress {
            event_id: Uuid::new_v5(&MARKER_IDS, format!("{}:{partition}:closed", job.id).as_bytes()),
            tenant: job.tenant.clone(),
            job_id: job.id,
            kind: job.kind,
            policies_version: job.version,
            partition,
            partitions: log.partitions(),
            processed: 0,
            total: 0,
            changed: 0,
            done: true,
            actor: job.actor.clone(),
            recorded_at: Utc::now(),
        };
        log.progress(&marker).await?;
    }
    Ok(())
}

/// Runs `job` to the end. The book decides on state, so running a job again (after a crash cut
/// it short) judges again and records only what is still undecided.
pub async fn run(log: &Log<'_>, book: &mut ComplianceBook, job: &Job, applied: &HashMap<i32, i64>) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let partitions = log.partitions();
    let mut by_partition: Vec<Vec<ResourceId>> = vec![Vec::new(); partitions.max(1) as usize];
    for id in book.select(&job.tenant, &job.selection) {
        by_partition[partition_of(id.as_uuid(), partitions) as usize].push(id);
    }
    let policies_version = book.policies_version(&job.tenant);
    let (mut judged, mut changed_total) = (0u64, 0u64);
    let (mut judging, mut appending) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    let mut in_flight: std::collections::VecDeque<Vec<rdkafka::producer::DeliveryFuture>> = std::collections::VecDeque::new();
    for (partition, ids) in by_partition.iter().enumerate() {
        let mut marker = JobProgress {
            event_id: Uuid::nil(),
            tenant: job.tenant.clone(),
            job_id: job.id,
            kind: job.kind,
            policies_version,
            partition: partition as i32,
            partitions,
            processed: 0,
            total: ids.len() as u64,
            changed: 0,
            done: ids.is_empty(),
            actor: job.actor.clone(),
            recorded_at: Utc::now(),
        };
        for chunk in ids.chunks(CHUNK) {
            let now = Utc::now();
            let clock = std::time::Instant::now();
            let decided = crate::judging::judge(book, chunk, now);
            judging += clock.elapsed();
            // A resource's decisions are settled together: counting where the resource changes
            // counts the resources.
            let changed = decided.iter().enumerate().filter(|(i, d)| *i == 0 || decided[i - 1].resource != d.resource).count();
            let clock = std::time::Instant::now();
            let mut sent = log.send_decisions(book, decided, applied, now, job.cause).await?;
            marker.processed += chunk.len() as u64;
            marker.changed += changed as u64;
            marker.done = marker.processed == marker.total;
            marker.recorded_at = now;
            marker.event_id = Uuid::new_v5(&MARKER_IDS, format!("{}:{partition}:{}", job.id, marker.processed).as_bytes());
            sent.push(log.send_progress(&marker).await?);
            in_flight.push_back(sent);
            // A few chunks in flight: judging the next overlaps the broker's acknowledgements.
            while in_flight.len() > IN_FLIGHT {
                for d in in_flight.pop_front().into_iter().flatten() {
                    Log::acknowledged(d).await?;
                }
            }
            appending += clock.elapsed();
        }
        if ids.is_empty() {
            marker.event_id = Uuid::new_v5(&MARKER_IDS, format!("{}:{partition}:0", job.id).as_bytes());
            log.progress(&marker).await?;
        }
        judged += marker.processed;
        changed_total += marker.changed;
    }
    let clock = std::time::Instant::now();
    for d in in_flight.into_iter().flatten() {
        Log::acknowledged(d).await?;
    }
    appending += clock.elapsed();
    tracing::info!(
        job = %job.id,
        kind = job.kind.as_str(),
        tenant = %job.tenant,
        judged,
        changed = changed_total,
        elapsed_ms = started.elapsed().as_millis() as u64,
        judging_ms = judging.as_millis() as u64,
        appending_ms = appending.as_millis() as u64,
        "evaluation job done"
    );
    Ok(())
}
