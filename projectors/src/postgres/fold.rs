//! Folding a batch of events into the row changes of the Postgres read model. Pure: given the
//! versions the read model already holds, it decides what to write, so the tricky part (duplicates,
//! replays, remove-then-re-add within one batch) is unit-tested without a database.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use uuid::Uuid;
use vtag_domain::tagging::Origin;
use vtag_domain::{Recorded, ResourceEvent};

/// (tenant, resource id)
pub type AggregateKey = (String, Uuid);

#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    pub provider: String,
    pub cloud_resource_id: String,
    pub resource_type: String,
    pub name: String,
    pub account_id: String,
    pub region: String,
    pub metadata: serde_json::Value,
}

/// The state of one `resources` row after the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceChange {
    /// Set when the batch holds a `ResourceObserved`: the row is (re)written in full.
    pub description: Option<Description>,
    pub version: u64,
    pub first_seen_at: DateTime<Utc>,
    pub last_changed_at: DateTime<Utc>,
    /// The latest monthly cost of the batch: (cents, currency, as of).
    pub monthly_cost: Option<(i64, String, chrono::NaiveDate)>,
}

/// Why a derived value is what it is (all `None` for people's and models' values).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Provenance {
    pub origin: Option<&'static str>,
    pub rule_id: Option<String>,
    pub rule_set_version: Option<u64>,
    pub native_key: Option<String>,
    pub native_value: Option<String>,
    pub key_mapping: Option<&'static str>,
    pub value_mapping: Option<&'static str>,
}

impl Provenance {
    fn of(origin: Option<&Origin>, rule_set_version: u64) -> Self {
        let mut p = Self { rule_set_version: Some(rule_set_version), ..Self::default() };
        match origin {
            None => {}
            Some(Origin::Default) => p.origin = Some("default"),
            Some(Origin::Rule { rule_id }) => {
                p.origin = Some("rule");
                p.rule_id = Some(rule_id.clone());
            }
            Some(Origin::Native { native_key, native_value, key_mapping, value_mapping }) => {
                p.origin = Some("native");
                p.native_key = Some(native_key.clone());
                p.native_value = Some(native_value.clone());
                p.key_mapping = Some(key_mapping.as_str());
                p.value_mapping = Some(value_mapping.as_str());
            }
        }
        p
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TagRow {
    pub value: String,
    pub source: String,
    pub confidence: f64,
    /// Who set the key and when, if this batch creates the row (an existing row keeps its own).
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub actor: String,
    pub at: DateTime<Utc>,
    pub version: u64,
    pub event_id: Uuid,
    pub provenance: Provenance,
}

/// What happens to one `virtual_tags` row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TagChange {
    /// The row existed before and was removed in this batch (at this version): delete it first.
    pub removed_at_version: Option<u64>,
    /// The value the key carries after the batch, if any.
    pub set: Option<TagRow>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub event_id: Uuid,
    pub tenant: String,
    pub resource_id: Uuid,
    pub version: u64,
    pub action: &'static str,
    pub tag_key: Option<String>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub source: Option<String>,
    pub confidence: Option<f64>,
    pub actor: String,
    pub causation_id: Uuid,
    pub correlation_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub partition: i32,
    pub offset: i64,
    /// Position of the change within its event (derivation events change several keys).
    pub change_index: i32,
    pub provenance: Provenance,
}

/// A re-derivation job's progress on one partition.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressRow {
    pub tenant: String,
    pub job_id: Uuid,
    pub rule_set_version: u64,
    pub partition: i32,
    pub partitions: i32,
    pub processed: u64,
    pub total: u64,
    pub changed: u64,
    pub done: bool,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Default, PartialEq)]
pub struct RowChanges {
    pub resources: HashMap<AggregateKey, ResourceChange>,
    pub tags: BTreeMap<(String, Uuid, String), TagChange>,
    pub audit: Vec<AuditRow>,
    pub progress: Vec<ProgressRow>,
    /// Events at or below the version already folded: replays and duplicates, skipped.
    pub skipped: usize,
    /// Events that arrived after a missing version (should never happen; logged).
    pub gaps: usize,
}

/// One decoded event and where it sits in the log.
pub struct Positioned {
    pub partition: i32,
    pub offset: i64,
    pub recorded: Recorded<ResourceEvent>,
}

/// Sets a key's row to (value, source, confidence) as of `env`. Creation is the first set since the
/// batch began or since the key was last removed, so the row reads the same however the log was cut
/// into batches.
fn set_tag(tag: &mut TagChange, env: &vtag_domain::EventEnvelope, (value, source, confidence): (&str, &str, f64), provenance: Provenance) {
    let (created_by, created_at) = match &tag.set {
        Some(earlier) => (earlier.created_by.clone(), earlier.created_at),
        None => (env.actor.as_str().to_owned(), env.recorded_at),
    };
    tag.set = Some(TagRow {
        created_by,
        created_at,
        value: value.to_owned(),
        source: source.to_owned(),
        confidence,
        actor: env.actor.as_str().to_owned(),
        at: env.recorded_at,
        version: env.aggregate_version,
        event_id: env.event_id,
        provenance,
    });
}

/// One row per (tenant, job, partition): the furthest marker of the batch. (One statement cannot
/// upsert the same row twice, and a job writes a marker per chunk.)
pub fn latest_progress(markers: Vec<ProgressRow>) -> Vec<ProgressRow> {
    let mut latest: BTreeMap<(String, Uuid, i32), ProgressRow> = BTreeMap::new();
    for m in markers {
        let key = (m.tenant.clone(), m.job_id, m.partition);
        match latest.get(&key) {
            Some(seen) if (seen.done, seen.processed) >= (m.done, m.processed) => {}
            _ => {
                latest.insert(key, m);
            }
        }
    }
    latest.into_values().collect()
}

/// Folds events (in log order) on top of `known_versions` (what the read model holds now).
pub fn fold(events: &[Positioned], known_versions: &HashMap<AggregateKey, u64>) -> RowChanges {
    let mut out = RowChanges::default();
    let mut versions: HashMap<AggregateKey, u64> = HashMap::new();
    for Positioned { partition, offset, recorded } in events {
        let env = &recorded.envelope;
        let key: AggregateKey = (env.tenant.as_str().to_owned(), env.aggregate_id.as_uuid());
        let current = versions.get(&key).or_else(|| known_versions.get(&key)).copied().unwrap_or(0);
        if env.aggregate_version <= current {
            out.skipped += 1;
            continue;
        }
        if env.aggregate_version != current + 1 {
            out.gaps += 1;
            tracing::error!(tenant = %key.0, aggregate = %key.1, current, got = env.aggregate_version, "version gap in the log");
        }
        versions.insert(key.clone(), env.aggregate_version);

        let change = out.resources.entry(key.clone()).or_insert_with(|| ResourceChange {
            description: None,
            version: 0,
            first_seen_at: env.occurred_at,
            last_changed_at: env.recorded_at,
            monthly_cost: None,
        });
        change.version = env.aggregate_version;
        change.last_changed_at = env.recorded_at;

        let mut audit = AuditRow {
            event_id: env.event_id,
            tenant: key.0.clone(),
            resource_id: key.1,
            version: env.aggregate_version,
            action: recorded.event.event_type(),
            tag_key: None,
            old_value: None,
            new_value: None,
            source: None,
            confidence: None,
            actor: env.actor.as_str().to_owned(),
            causation_id: env.causation_id,
            correlation_id: env.correlation_id,
            occurred_at: env.occurred_at,
            recorded_at: env.recorded_at,
            partition: *partition,
            offset: *offset,
            change_index: 0,
            provenance: Provenance::default(),
        };

        match &recorded.event {
            ResourceEvent::ResourceObserved(e) => {
                if env.aggregate_version == 1 {
                    change.first_seen_at = env.occurred_at;
                }
                change.description = Some(Description {
                    provider: e.provider.as_str().to_owned(),
                    cloud_resource_id: e.cloud_id.as_str().to_owned(),
                    resource_type: e.description.resource_type.clone(),
                    name: e.description.name.clone(),
                    account_id: e.description.account.clone(),
                    region: e.description.region.clone(),
                    metadata: serde_json::to_value(&e.description.metadata).unwrap_or_default(),
                });
            }
            // Native tags never reach the query side; the event only moves the version.
            ResourceEvent::NativeTagsChanged(_) => {}
            ResourceEvent::MonthlyCostChanged(e) => {
                let sign = if e.cents < 0 { "-" } else { "" };
                audit.new_value = Some(format!("{sign}{}.{:02} {}", (e.cents / 100).abs(), (e.cents % 100).abs(), e.currency));
                change.monthly_cost = Some((e.cents, e.currency.clone(), e.as_of));
            }
            ResourceEvent::VirtualTagApplied(e) => {
                audit.tag_key = Some(e.key.as_str().to_owned());
                audit.old_value = e.previous.as_ref().map(|p| p.value.as_str().to_owned());
                audit.new_value = Some(e.value.as_str().to_owned());
                audit.source = Some(e.source.as_str().to_owned());
                audit.confidence = Some(e.confidence.value());
                let tag = out.tags.entry((key.0.clone(), key.1, e.key.as_str().to_owned())).or_default();
                let value = (e.value.as_str(), e.source.as_str(), e.confidence.value());
                set_tag(tag, env, value, Provenance::default());
            }
            ResourceEvent::VirtualTagsDerived(e) => {
                for (i, c) in e.changes.iter().enumerate() {
                    let provenance = Provenance::of(c.origin.as_ref(), e.rule_set_version);
                    let mut row = audit.clone();
                    row.change_index = i as i32;
                    row.tag_key = Some(c.key.as_str().to_owned());
                    row.old_value = c.previous.as_ref().map(|p| p.value.as_str().to_owned());
                    row.new_value = c.value.as_ref().map(|v| v.as_str().to_owned());
                    row.source = Some(c.source.as_str().to_owned());
                    row.confidence = c.value.as_ref().map(|_| 1.0);
                    row.provenance = provenance.clone();
                    out.audit.push(row);
                    let tag = out.tags.entry((key.0.clone(), key.1, c.key.as_str().to_owned())).or_default();
                    match &c.value {
                        Some(value) => set_tag(tag, env, (value.as_str(), c.source.as_str(), 1.0), provenance),
                        None => {
                            tag.removed_at_version = Some(env.aggregate_version);
                            tag.set = None;
                        }
                    }
                }
                continue;
            }
            ResourceEvent::VirtualTagRemoved(e) => {
                audit.tag_key = Some(e.key.as_str().to_owned());
                audit.old_value = Some(e.previous.value.as_str().to_owned());
                audit.source = Some(e.previous.source.as_str().to_owned());
                let tag = out.tags.entry((key.0.clone(), key.1, e.key.as_str().to_owned())).or_default();
                tag.removed_at_version = Some(env.aggregate_version);
                tag.set = None;
            }
        }
        out.audit.push(audit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use vtag_domain::resource::*;
    use vtag_domain::*;

    fn ctx(n: u128) -> CommandContext {
        CommandContext {
            command_id: Uuid::from_u128(n),
            tenant: TenantId::parse("acme").unwrap(),
            actor: Actor::parse("alice").unwrap(),
            correlation_id: Uuid::from_u128(0),
            occurred_at: Utc::now(),
            recorded_at: Utc::now(),
        }
    }

    fn history() -> (ResourceId, Vec<Positioned>) {
        let cloud = CloudResourceId::parse("i-1").unwrap();
        let tenant = TenantId::parse("acme").unwrap();
        let id = ResourceId::derive(&tenant, Provider::Aws, &cloud);
        let commands = [
            ResourceCommand::Observe(ObserveResource {
                provider: Provider::Aws,
                cloud_id: cloud,
                description: ResourceDescription::parse("1".into(), "r".into(), "t".into(), "web".into(), BTreeMap::new()).unwrap(),
                native_tags: NativeTags::default(),
                observed_at: Utc::now(),
            }),
            apply("team", "a"),
            ResourceCommand::RemoveVirtualTag(RemoveVirtualTag { key: TagKey::parse("team").unwrap(), expected_version: None }),
            apply("team", "b"),
        ];
        let mut state = ResourceState::default();
        let mut log = Vec::new();
        for (i, c) in commands.iter().enumerate() {
            for r in decide(&state, id, c, &ctx(i as u128 + 1), &no_derivation()).unwrap() {
                state = evolve(state, &r);
                log.push(Positioned { partition: 0, offset: log.len() as i64, recorded: r });
            }
        }
        (id, log)
    }

    fn no_derivation() -> tagging::TaggingConfig {
        tagging::TaggingConfig { version: 0, schema: tagging::TagSchema::new(Vec::new()), rules: tagging::RuleSet::default() }
    }

    fn apply(k: &str, v: &str) -> ResourceCommand {
        ResourceCommand::ApplyVirtualTag(ApplyVirtualTag {
            key: TagKey::parse(k).unwrap(),
            value: TagValue::parse(v).unwrap(),
            source: TagSource::Manual,
            confidence: Confidence::CERTAIN,
            expected_version: None,
        })
    }

    #[test]
    fn a_whole_history_in_one_batch_ends_in_the_final_state() {
        let (id, log) = history();
        let changes = fold(&log, &HashMap::new());
        let key = ("acme".to_owned(), id.as_uuid());
        assert_eq!(changes.resources[&key].version, 4);
        assert!(changes.resources[&key].description.is_some());
        let tag = &changes.tags[&("acme".to_owned(), id.as_uuid(), "team".to_owned())];
        assert_eq!(tag.removed_at_version, Some(3), "the old row must go, so created_at restarts");
        assert_eq!(tag.set.as_ref().unwrap().value, "b");
        assert_eq!(tag.set.as_ref().unwrap().created_at, log[3].recorded.envelope.recorded_at);
        assert_eq!(changes.audit.len(), 4);
        assert_eq!(changes.skipped, 0);
    }

    #[test]
    fn replayed_events_change_nothing() {
        let (id, log) = history();
        let known = HashMap::from([(("acme".to_owned(), id.as_uuid()), 4)]);
        let changes = fold(&log, &known);
        assert_eq!(changes.skipped, 4);
        assert!(changes.resources.is_empty() && changes.tags.is_empty() && changes.audit.is_empty());
    }

    #[test]
    fn a_partial_replay_applies_only_the_new_tail() {
        let (id, log) = history();
        let known = HashMap::from([(("acme".to_owned(), id.as_uuid()), 2)]);
        let changes = fold(&log, &known);
        assert_eq!(changes.skipped, 2);
        assert_eq!(changes.audit.iter().map(|a| a.version).collect::<Vec<_>>(), [3, 4]);
        assert!(changes.resources.values().all(|r| r.description.is_none()));
    }

    #[test]
    fn a_tag_created_then_changed_in_one_batch_keeps_its_creation() {
        let (id, log) = history();
        // observe (v1), team=a by alice (v2), then — in the same batch — team=c by bob (v3)
        let mut log: Vec<Positioned> = log.into_iter().take(2).collect();
        let state = log.iter().fold(ResourceState::default(), |s, p| evolve(s, &p.recorded));
        let mut ctx3 = ctx(42);
        ctx3.actor = Actor::parse("bob").unwrap();
        ctx3.recorded_at = log[1].recorded.envelope.recorded_at + chrono::Duration::seconds(5);
        let change = decide(&state, id, &apply("team", "c"), &ctx3, &no_derivation()).unwrap().remove(0);
        log.push(Positioned { partition: 0, offset: 2, recorded: change });
        let changes = fold(&log, &HashMap::new());
        let row = changes.tags.values().next().unwrap().set.clone().unwrap();
        assert_eq!(row.value, "c");
        assert_eq!(row.actor, "bob");
        assert_eq!(row.created_by, "alice");
        assert_eq!(row.created_at, log[1].recorded.envelope.recorded_at);
    }

    #[test]
    fn duplicates_inside_a_batch_are_skipped() {
        let (_, mut log) = history();
        let dup = Positioned { partition: 0, offset: 99, recorded: log[1].recorded.clone() };
        log.insert(2, dup);
        let changes = fold(&log, &HashMap::new());
        assert_eq!(changes.skipped, 1);
        assert_eq!(changes.audit.len(), 4);
        assert_eq!(changes.gaps, 0);
    }

    #[test]
    fn a_derivation_writes_one_audit_row_per_key_with_provenance() {
        use vtag_domain::tagging::{Action, Condition, Field, Operator, Rule, RuleSet, TagSchema, TaggingConfig};
        let rule = Rule {
            id: "web".into(),
            key: "team".into(),
            priority: 1,
            enabled: true,
            condition: Condition::Test { field: Field::Name, operator: Operator::StartsWith("web".into()), ignore_case: false },
            action: Action::Set("platform".into()),
            effective_from: None,
            effective_to: None,
        };
        let config = TaggingConfig { version: 3, schema: TagSchema::seed_default(), rules: RuleSet::new(3, vec![rule], Default::default()).unwrap() };
        let cloud = CloudResourceId::parse("i-2").unwrap();
        let id = ResourceId::derive(&TenantId::parse("acme").unwrap(), Provider::Aws, &cloud);
        let observe = ResourceCommand::Observe(ObserveResource {
            provider: Provider::Aws,
            cloud_id: cloud,
            description: ResourceDescription::parse("1".into(), "r".into(), "t".into(), "web".into(), BTreeMap::new()).unwrap(),
            native_tags: NativeTags::parse(BTreeMap::from([("Env".to_owned(), "PROD".to_owned())])).unwrap(),
            observed_at: Utc::now(),
        });
        let log: Vec<Positioned> = decide(&ResourceState::default(), id, &observe, &ctx(1), &config)
            .unwrap()
            .into_iter()
            .enumerate()
            .map(|(i, recorded)| Positioned { partition: 0, offset: i as i64, recorded })
            .collect();
        let changes = fold(&log, &HashMap::new());
        let derived: Vec<&AuditRow> = changes.audit.iter().filter(|a| a.action == "VirtualTagsDerived").collect();
        assert_eq!(derived.iter().map(|a| (a.change_index, a.tag_key.as_deref())).collect::<Vec<_>>(), [(0, Some("environment")), (1, Some("team"))]);
        assert_eq!(derived[0].provenance.native_key.as_deref(), Some("Env"));
        assert_eq!(derived[0].provenance.value_mapping, Some("alias"));
        assert_eq!(derived[1].provenance.rule_id.as_deref(), Some("web"));
        assert_eq!(derived[1].provenance.rule_set_version, Some(3));
        let team = changes.tags[&("acme".to_owned(), id.as_uuid(), "team".to_owned())].set.clone().unwrap();
        assert_eq!((team.value.as_str(), team.source.as_str(), team.provenance.origin), ("platform", "rule_based", Some("rule")));
    }

    #[test]
    fn progress_keeps_the_furthest_marker_per_job_and_partition() {
        let row = |p: i32, processed: u64, done: bool| ProgressRow {
            tenant: "acme".into(),
            job_id: Uuid::nil(),
            rule_set_version: 1,
            partition: p,
            partitions: 2,
            processed,
            total: 300,
            changed: 0,
            done,
            actor: "a".into(),
            at: Utc::now(),
        };
        let latest = latest_progress(vec![row(0, 100, false), row(0, 300, true), row(0, 200, false), row(1, 100, false)]);
        assert_eq!(latest.iter().map(|r| (r.partition, r.processed, r.done)).collect::<Vec<_>>(), [(0, 300, true), (1, 100, false)]);
    }
}
