//! The herald (docs/adr/0007 §5, docs/herald.md): reads `<prefix>compliance-events` and sends an
//! alert for every violation that becomes due, escalates or — where a route asks — resolves, to
//! the channels its tenant's routes name (webhook signed with HMAC-SHA256, Slack, email).
//!
//! **Guarantee: every transition reaches every routed channel at least once, and only a request
//! in flight at a crash can reach it twice — with the same delivery id.** A delivery is (transition event id × channel) with a stable id (UUIDv5
//! of both). A batch's transitions, its deliveries as `sending` and the consumer offsets after it
//! are committed in one transaction *before* anything is sent; a delivery becomes `sent` after
//! the receiver's 2xx / the SMTP server's 250, `failed` with its next attempt time (exponential
//! backoff) otherwise, `dead` after the last attempt. `sent` is never sent again; a `sending` row
//! found at start (a crash while it was in flight: the one ambiguous case) is sent again with the
//! same delivery id (`X-Vtag-Delivery-Id`, the email's `Message-ID`).
//!
//! Each start reads every partition from its beginning: the openings (severity, message,
//! remediation) are folded in memory, and only records from the stored offsets on are routed.
//! One herald runs at a time (a Postgres advisory lock).

mod alert;
mod config;
mod ledger;
mod send;
mod settings;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::{Connection, PgConnection};
use tokio::sync::watch;
use uuid::Uuid;
use vtag_domain::compliance::Severity;
use vtag_eventlog::compliance::ComplianceLog;
use vtag_eventlog::kafka::assigned_consumer_config;
use vtag_eventlog::{DecodeError, EventCodec, EventTopics};

pub use alert::{Alert, Noted, Opening, Openings, ResourceInfo, ResourceRef};
pub use config::{Alertable, Channel, Config, Facts, Route, Routed, Target};
pub use ledger::{Ledger, Pending, SCHEMA};
pub use send::{message_id, sign, DELIVERY_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
pub use settings::{backoff, Settings};

/// Namespace of delivery ids: `UUIDv5(DELIVERY_IDS, "<event id>:<channel id>")`.
pub const DELIVERY_IDS: Uuid = Uuid::from_u128(0x6c1e_57a2_93d0_4b8e_a4f1_0d27_c85b_e316);

/// The id of the delivery of transition `event_id` to `channel`: the same however often it is
/// recorded or sent.
pub fn delivery_id(event_id: Uuid, channel: &str) -> Uuid {
    Uuid::new_v5(&DELIVERY_IDS, format!("{event_id}:{channel}").as_bytes())
}

/// Records read per batch.
const BATCH: usize = 1000;
/// Transitions recorded per ledger transaction (at most; a record's are never split).
const MAX_TRANSITIONS: usize = 5000;
/// Failed deliveries taken per retry round.
const RETRY_BATCH: i64 = 200;

struct Herald {
    settings: Settings,
    config: Config,
    ledger: Ledger,
    reads: ledger::ReadModel,
    codec: EventCodec,
    sender: send::Sender,
}

/// Runs until `shutdown` resolves (finishing the sends under way), starting over after any failure.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    settings.check()?;
    let config = match &settings.config_path {
        Some(path) => Config::load(path, |name| settings.secret(name))?,
        None => {
            tracing::info!("VTAG_HERALD_CONFIG is not set: no channels and no routes, so transitions are read and recorded but nothing is sent");
            Config::default()
        }
    };
    describe(&config);
    let topics = EventTopics::new(settings.topic_prefix.clone(), settings.partitions);
    topics.ensure_created(&settings.brokers).await.context("creating topics")?;
    tokio::pin!(shutdown);
    let _lock = tokio::select! {
        _ = &mut shutdown => return Ok(()),
        lock = single_herald(&settings) => lock?,
    };
    let ledger = Ledger::connect(&settings.database_url).await?;
    let reads = ledger::ReadModel::connect(&settings.database_url).await?;
    let codec = EventCodec::for_compliance(&settings.registry_url, topics.compliance_events())?;
    let sender = send::Sender::new(settings.send_timeout)?;
    let herald = Herald { settings, config, ledger, reads, codec, sender };

    let (stop, stopped) = watch::channel(false);
    loop {
        let cycle = herald.cycle(stopped.clone());
        tokio::pin!(cycle);
        let failed = tokio::select! {
            _ = &mut shutdown => {
                // Sends under way finish (each bounded by the send timeout); what is left stays
                // `sending` and is sent at the next start.
                let _ = stop.send(true);
                if let Err(e) = cycle.await {
                    tracing::warn!(error = format!("{e:#}"), "the herald failed while stopping");
                }
                break;
            }
            result = &mut cycle => match result {
                Ok(()) => break,
                Err(e) => e,
            },
        };
        tracing::error!(error = format!("{failed:#}"), "the herald failed; starting over (deliveries in flight are sent again with the same ids)");
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
    tracing::info!("herald stopped");
    Ok(())
}

fn describe(config: &Config) {
    let mut tenants: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for c in config.channels.values() {
        tenants.entry(&c.tenant).or_default().0 += 1;
    }
    for r in &config.routes {
        tenants.entry(&r.tenant).or_default().1 += 1;
    }
    for (tenant, (channels, routes)) in &tenants {
        tracing::info!(tenant, channels, routes, "herald configuration");
    }
    if config.routes.is_empty() {
        tracing::info!("no routes: nothing is routed to any channel");
    }
}

/// Waits until no other herald of this installation runs.
async fn single_herald(settings: &Settings) -> anyhow::Result<PgConnection> {
    let mut conn = PgConnection::connect(&settings.database_url).await.context("connecting to Postgres for the herald lock")?;
    let key = format!("vtag-herald:{}", settings.topic_prefix);
    loop {
        let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock(hashtextextended($1, 0))").bind(&key).fetch_one(&mut conn).await?;
        if locked {
            return Ok(conn);
        }
        tracing::warn!("another herald runs; waiting");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

impl Herald {
    /// Sends again what a previous cycle left in flight, then dispatches the log and retries
    /// failed deliveries until stopped; returns with the first error.
    async fn cycle(&self, stopped: watch::Receiver<bool>) -> anyhow::Result<()> {
        let interrupted = self.ledger.requeue_interrupted().await?;
        if interrupted > 0 {
            tracing::warn!(deliveries = interrupted, "deliveries whose outcome was never recorded are sent again with the same delivery ids");
        }
        tokio::try_join!(self.dispatch(stopped.clone()), self.retry(stopped))?;
        Ok(())
    }

    /// Reads the compliance-events topic from its start: records before the stored offsets are
    /// folded only; later ones are routed, recorded (with the offsets) and sent.
    async fn dispatch(&self, mut stopped: watch::Receiver<bool>) -> anyhow::Result<()> {
        let topic = self.codec.topic().to_owned();
        let partitions = vtag_eventlog::partition_count(&self.settings.brokers, &topic)?;
        anyhow::ensure!(partitions > 0, "topic {topic} has no partitions");
        let mut next = self.ledger.offsets(&topic).await?;
        let consumer: StreamConsumer = assigned_consumer_config(&self.settings.brokers, "vtag-herald").create()?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(&topic, p, Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
        tracing::info!(topic, partitions, from = ?next, "herald reading (earlier records are folded, not sent)");
        let mut openings = Openings::default();
        loop {
            let batch = tokio::select! {
                _ = stopped.wait_for(|s| *s) => return Ok(()),
                batch = next_batch(&consumer) => batch?,
            };
            let mut noted = Vec::new();
            let mut advanced: HashMap<i32, i64> = HashMap::new();
            for (partition, offset, payload) in batch {
                let fresh = offset >= next.get(&partition).copied().unwrap_or(0);
                let decisions = match self.codec.decode_compliance_log(&payload).await {
                    Ok(ComplianceLog::Decisions(d)) => d,
                    // an evaluation job's progress: nothing to alert
                    Ok(ComplianceLog::Progress(_)) => Vec::new(),
                    Err(DecodeError::Unavailable(e)) => anyhow::bail!("schema registry unavailable: {e}"),
                    Err(DecodeError::Poison(e)) => {
                        if fresh {
                            tracing::error!(partition, offset, error = %e, "skipping an undecodable compliance record");
                        }
                        Vec::new()
                    }
                };
                for record in &decisions {
                    let transition = openings.fold(record);
                    if fresh {
                        noted.extend(transition.map(|t| (partition, offset, t)));
                    }
                }
                if fresh {
                    advanced.insert(partition, offset + 1);
                }
                // A sweep's records carry thousands of decisions: one ledger transaction per few thousand.
                if noted.len() >= MAX_TRANSITIONS {
                    self.deliver(&topic, std::mem::take(&mut noted), &advanced, &stopped).await?;
                    next.extend(advanced.drain());
                    if *stopped.borrow() {
                        return Ok(());
                    }
                }
            }
            if advanced.is_empty() {
                continue;
            }
            self.deliver(&topic, noted, &advanced, &stopped).await?;
            next.extend(advanced);
        }
    }

    /// Routes a batch's transitions, records them with their deliveries and the offsets, then sends.
    async fn deliver(&self, topic: &str, noted: Vec<(i32, i64, Noted)>, offsets: &HashMap<i32, i64>, stopped: &watch::Receiver<bool>) -> anyhow::Result<()> {
        let keys: Vec<(String, Uuid)> = noted.iter().map(|(_, _, n)| (n.tenant.clone(), n.resource_id)).collect();
        let resources = if noted.is_empty() { HashMap::new() } else { self.reads.resources(&keys).await? };
        let mut transitions = Vec::with_capacity(noted.len());
        let mut deliveries = Vec::new();
        for (partition, offset, n) in &noted {
            let info = resources.get(&(n.tenant.clone(), n.resource_id)).cloned().unwrap_or_default();
            let facts = Facts {
                tenant: &n.tenant,
                severity: n.opening.as_ref().and_then(|o| Severity::parse(&o.severity)),
                policy_id: &n.policy_id,
                team: info.team.as_deref(),
                transition: n.transition,
            };
            let routed = self.config.route(&facts);
            tracing::debug!(tenant = n.tenant, resource = %n.resource_id, policy = n.policy_id, key = n.tag_key, transition = n.transition.as_str(), channels = routed.len(), "transition routed");
            for r in &routed {
                let channel = &self.config.channels[&r.channel];
                let id = delivery_id(n.event_id, &r.channel);
                let alert = Alert::new(n, id, &r.channel, &info);
                let contact = r.escalation_contact.then(|| n.escalated_to.clone().or_else(|| n.opening.as_ref().and_then(|o| o.escalate_to.clone()))).flatten();
                deliveries.push(ledger::NewDelivery {
                    delivery_id: id,
                    event_id: n.event_id,
                    channel_id: r.channel.clone(),
                    channel_kind: channel.target.kind(),
                    tenant: n.tenant.clone(),
                    escalation_contact: contact,
                    payload: serde_json::to_string(&alert)?,
                });
            }
            transitions.push(ledger::TransitionRow {
                event_id: n.event_id,
                tenant: n.tenant.clone(),
                resource_id: n.resource_id,
                policy_id: n.policy_id.clone(),
                tag_key: n.tag_key.clone(),
                transition: n.transition.as_str(),
                partition: *partition,
                offset: *offset,
                deliveries: routed.len() as i32,
            });
        }
        let pending = self.ledger.record(topic, &transitions, &deliveries, offsets).await?;
        self.send_all(pending, stopped).await
    }

    /// Retries failed deliveries as they fall due.
    async fn retry(&self, mut stopped: watch::Receiver<bool>) -> anyhow::Result<()> {
        let poll = self.settings.retry_base.clamp(Duration::from_millis(10), Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => return Ok(()),
                _ = tokio::time::sleep(poll) => {}
            }
            loop {
                let due = self.ledger.claim_due(RETRY_BATCH).await?;
                if due.is_empty() {
                    break;
                }
                self.send_all(due, &stopped).await?;
                if *stopped.borrow() {
                    return Ok(());
                }
            }
        }
    }

    /// Sends deliveries: each channel's in order, one at a time; channels side by side.
    async fn send_all(&self, pending: Vec<Pending>, stopped: &watch::Receiver<bool>) -> anyhow::Result<()> {
        let mut by_channel: BTreeMap<String, Vec<Pending>> = BTreeMap::new();
        for p in pending {
            by_channel.entry(p.channel_id.clone()).or_default().push(p);
        }
        let sends = by_channel.into_iter().map(|(channel, list)| self.send_channel(channel, list, stopped));
        for result in futures::future::join_all(sends).await {
            result?;
        }
        Ok(())
    }

    async fn send_channel(&self, channel_id: String, list: Vec<Pending>, stopped: &watch::Receiver<bool>) -> anyhow::Result<()> {
        let mut list = list.into_iter();
        while let Some(p) = list.next() {
            if *stopped.borrow() {
                return Ok(()); // the rest stays `sending` (never attempted): sent at the next start
            }
            let attempt = p.attempts + 1;
            let outcome = match self.config.channels.get(&channel_id).filter(|c| c.tenant == p.tenant) {
                Some(channel) => self.sender.attempt(channel, &p).await,
                None => Err(format!("channel '{channel_id}' of tenant '{}' is no longer configured", p.tenant)),
            };
            let kind = self.config.channels.get(&channel_id).map_or("-", |c| c.target.kind());
            let error = match outcome {
                Ok(answer) => {
                    self.ledger.mark_sent(p.delivery_id).await?;
                    tracing::info!(tenant = p.tenant, channel = channel_id, kind, delivery_id = %p.delivery_id, attempt, answer, "alert sent");
                    continue;
                }
                Err(e) => e,
            };
            let max = self.settings.max_attempts as i32;
            let delay = backoff(self.settings.retry_base, self.settings.retry_max, attempt as u32);
            if attempt >= max {
                self.ledger.mark_failed(p.delivery_id, &error, None).await?;
                tracing::error!(tenant = p.tenant, channel = channel_id, kind, delivery_id = %p.delivery_id, attempt, error, "alert dead: no attempts left");
            } else {
                self.ledger.mark_failed(p.delivery_id, &error, Some(delay)).await?;
                tracing::info!(tenant = p.tenant, channel = channel_id, kind, delivery_id = %p.delivery_id, attempt, error, retry_in = ?delay, "alert failed");
            }
            // The channel just failed: the rest of its list waits as long, without an attempt.
            let rest: Vec<Uuid> = list.by_ref().map(|q| q.delivery_id).collect();
            if !rest.is_empty() {
                let reason = format!("not attempted: channel '{channel_id}' failed delivery {} just before ({error})", p.delivery_id);
                self.ledger.defer(&rest, &reason, delay).await?;
                tracing::info!(channel = channel_id, deliveries = rest.len(), retry_in = ?delay, "deliveries deferred behind a failing channel");
            }
        }
        Ok(())
    }
}

/// Waits for a record, then takes what else is there within a few milliseconds.
async fn next_batch(consumer: &StreamConsumer) -> anyhow::Result<Vec<(i32, i64, Vec<u8>)>> {
    let mut batch = Vec::new();
    let first = consumer.recv().await?;
    batch.push((first.partition(), first.offset(), first.payload().unwrap_or_default().to_vec()));
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(20);
    while batch.len() < BATCH {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(m)) => batch.push((m.partition(), m.offset(), m.payload().unwrap_or_default().to_vec())),
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => break,
        }
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_are_stable_per_transition_and_channel() {
        let event = Uuid::from_u128(42);
        assert_eq!(delivery_id(event, "hook"), delivery_id(event, "hook"));
        assert_ne!(delivery_id(event, "hook"), delivery_id(event, "mail"));
        assert_ne!(delivery_id(event, "hook"), delivery_id(Uuid::from_u128(43), "hook"));
        assert_eq!(delivery_id(event, "hook").get_version_num(), 5);
    }
}
