//! Re-derivation jobs: after a tenant's tagging configuration changes, every resource is brought to
//! the new version — retroactive by construction, as events.
//!
//! A job is "tenant T to configuration version V"; its id derives from (T, V), and each resource's
//! re-derivation is a `Rederive` command whose id derives from (job, resource). So a job that is
//! interrupted (a restart, a lost lease) simply runs again: resources already done answer from the
//! remembered outcomes rebuilt from the log, unchanged ones record nothing, and no change is ever
//! applied twice. Each partition walks its own resources under its own lock, in chunks, so
//! commands interleave with the job, and after every chunk a progress marker is appended to that
//! partition — after the events it counts, which is what lets a projector report progress as
//! "reflected in the read model", not merely "decided".

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use uuid::Uuid;
use vtag_domain::{Actor, CommandContext, ResourceCommand, TenantId};
use vtag_eventlog::ProgressMarker;

use super::{CommandProcessor, SubmitError, Submission};

/// Who re-derives when no person published the configuration (the initial one).
const SYSTEM_ACTOR: &str = "system:rederivation";

impl CommandProcessor {
    /// Runs until the process ends: after start-up, after every configuration change, and every
    /// few seconds (to pick up partitions this instance was just given), every owned partition is
    /// brought to each tenant's current configuration.
    pub fn spawn_rederivation(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        let mut changes = self.configs.subscribe();
        tokio::spawn(async move {
            loop {
                this.rederive_everything().await;
                tokio::select! {
                    _ = changes.changed() => {}
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        })
    }

    async fn rederive_everything(self: &Arc<Self>) {
        let tenants: Arc<[(TenantId, u64)]> = self.configs.versions().into();
        if tenants.is_empty() {
            return;
        }
        // One task per partition: deciding is CPU work, and partitions are independent, so the walk
        // uses every core rather than the one thread polling a joined future.
        let jobs = (0..self.partitions.len() as i32).map(|p| {
            let (this, tenants) = (self.clone(), tenants.clone());
            tokio::spawn(async move { this.rederive_partition(p, &tenants).await })
        });
        for finished in join_all(jobs).await {
            if let Err(e) = finished {
                tracing::error!(error = %e, "a re-derivation task failed; the next round retries it");
            }
        }
    }

    async fn rederive_partition(&self, partition: i32, tenants: &[(TenantId, u64)]) {
        for (tenant, version) in tenants {
            let ids = {
                let state = self.partitions[partition as usize].lock().await;
                if !state.owned || state.completed.get(tenant).is_some_and(|done| done >= version) {
                    continue;
                }
                state.by_tenant.get(tenant).cloned().unwrap_or_default()
            };
            if let Err(reason) = self.run_job(partition, tenant, *version, &ids).await {
                tracing::warn!(partition, %tenant, version, %reason, "re-derivation paused; it resumes on the next round");
            }
        }
    }

    async fn run_job(&self, partition: i32, tenant: &TenantId, version: u64, ids: &[vtag_domain::ResourceId]) -> Result<(), String> {
        let config = self.configs.get(tenant);
        if config.version != version {
            return Ok(()); // superseded: the next round runs the newer version
        }
        let job_id = ProgressMarker::job_id(tenant, version);
        let actor = config.actor.clone().unwrap_or_else(|| Actor::parse(SYSTEM_ACTOR).expect("valid actor"));
        let causation = config.causation_id.unwrap_or(job_id);
        let started = std::time::Instant::now();
        let total = ids.len() as u64;
        let (mut processed, mut changed) = (0u64, 0u64);
        let mut chunks = ids.chunks(self.rederive.chunk.max(1)).peekable();
        if chunks.peek().is_none() {
            self.append_marker(partition, tenant, job_id, version, &actor, (0, 0, 0), true).await?;
        }
        while let Some(chunk) = chunks.next() {
            if self.configs.get(tenant).version != version {
                return Ok(());
            }
            let now = chrono::Utc::now();
            let group = chunk
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let context = CommandContext {
                        command_id: Uuid::new_v5(&job_id, id.as_uuid().as_bytes()),
                        tenant: tenant.clone(),
                        actor: actor.clone(),
                        correlation_id: causation,
                        occurred_at: now,
                        recorded_at: now,
                    };
                    (i, Submission { aggregate: *id, command: ResourceCommand::Rederive, context })
                })
                .collect();
            for (_, result) in self.submit_to_partition(partition, group).await {
                match result {
                    Ok(outcome) if outcome.events > 0 => changed += 1,
                    Ok(_) | Err(SubmitError::Refused(_)) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
            processed += chunk.len() as u64;
            let done = chunks.peek().is_none();
            self.append_marker(partition, tenant, job_id, version, &actor, (processed, total, changed), done).await?;
            if !done && !self.rederive.pause.is_zero() {
                tokio::time::sleep(self.rederive.pause).await;
            }
        }
        self.partitions[partition as usize].lock().await.completed.insert(tenant.clone(), version);
        tracing::info!(partition, %tenant, version, total, changed, elapsed_ms = started.elapsed().as_millis() as u64, "re-derivation done");
        Ok(())
    }

    /// Appends a progress marker to `partition` and waits for the broker (under the partition's lock,
    /// so it lands after the events it counts and only while we own the partition).
    #[allow(clippy::too_many_arguments)]
    async fn append_marker(
        &self,
        partition: i32,
        tenant: &TenantId,
        job_id: Uuid,
        version: u64,
        actor: &Actor,
        (processed, total, changed): (u64, u64, u64),
        done: bool,
    ) -> Result<(), String> {
        let mut state = self.partitions[partition as usize].lock().await;
        if !state.owned {
            return Err(format!("partition {partition} is no longer ours"));
        }
        let marker = ProgressMarker {
            event_id: Uuid::new_v5(&job_id, format!("{partition}/{processed}").as_bytes()),
            tenant: tenant.clone(),
            job_id,
            rule_set_version: version,
            partition,
            partitions: self.partitions.len() as i32,
            processed,
            total,
            changed,
            done,
            actor: actor.clone(),
            recorded_at: chrono::Utc::now(),
        };
        let payload = self.codec.encode_progress(&marker).await.map_err(|e| e.to_string())?;
        let delivery = self.send(partition, &job_id.to_string(), payload)?;
        match delivery.await {
            Ok(Ok(delivered)) => {
                state.reached(delivered.offset);
                Ok(())
            }
            Ok(Err((e, _))) => Err(e.to_string()),
            Err(_) => Err("delivery cancelled".to_owned()),
        }?;
        drop(state);
        Ok(())
    }
}
