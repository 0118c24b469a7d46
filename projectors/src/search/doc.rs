//! A resource as the search index holds it: what it is, its virtual tags (never its native ones)
//! and its compliance, one document per resource. Folding events into a document is pure, so
//! replays, duplicates and out-of-order topics are unit-tested without a server.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vtag_domain::compliance::Judgement;
use vtag_domain::{Recorded, ResourceEvent};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResourceDoc {
    pub tenant: String,
    pub resource_id: String,
    /// The last resource event folded in (the aggregate version; 0: only compliance is known yet,
    /// the document is not shown).
    pub version: u64,
    #[serde(default)]
    pub resource_name: String,
    /// The name lower-cased: sorting and search_after (a `text` field cannot be sorted).
    #[serde(default)]
    pub name_sort: String,
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub cloud_id: String,
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub resource_type: String,
    /// Sorted by key: the same tags always make the same document.
    #[serde(default)]
    pub tags: Vec<DocTag>,
    #[serde(default)]
    pub monthly_cost_cents: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    /// `compliant`, `non_compliant`, or `not_evaluated` until the evaluator has judged it.
    #[serde(default = "not_evaluated")]
    pub compliance_status: String,
    #[serde(default)]
    pub compliance_score: Option<f64>,
    #[serde(default)]
    pub violated_policies: Vec<String>,
    /// The resource's compliance stream version last folded in.
    #[serde(default)]
    pub compliance_version: u64,
    #[serde(default)]
    pub last_updated: Option<DateTime<Utc>>,
}

fn not_evaluated() -> String {
    "not_evaluated".to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocTag {
    pub key: String,
    pub value: String,
    pub source: String,
    pub confidence: f64,
}

impl ResourceDoc {
    pub fn new(tenant: &str, resource_id: String) -> Self {
        Self { tenant: tenant.to_owned(), resource_id, compliance_status: not_evaluated(), ..Self::default() }
    }

    /// Folds one resource event in; false (and nothing changed) when the document already has it.
    pub fn apply(&mut self, recorded: &Recorded<ResourceEvent>) -> bool {
        let env = &recorded.envelope;
        if env.aggregate_version <= self.version {
            return false;
        }
        self.version = env.aggregate_version;
        self.last_updated = Some(self.last_updated.map_or(env.recorded_at, |t| t.max(env.recorded_at)));
        match &recorded.event {
            ResourceEvent::ResourceObserved(e) => {
                self.provider = e.provider.as_str().to_owned();
                self.cloud_id = e.cloud_id.as_str().to_owned();
                self.account.clone_from(&e.description.account);
                self.region.clone_from(&e.description.region);
                self.resource_type.clone_from(&e.description.resource_type);
                self.resource_name.clone_from(&e.description.name);
                self.name_sort = e.description.name.to_lowercase();
            }
            // Native tags never reach the query side; the event only moves the version.
            ResourceEvent::NativeTagsChanged(_) => {}
            ResourceEvent::MonthlyCostChanged(e) => {
                self.monthly_cost_cents = Some(e.cents);
                self.currency = Some(e.currency.clone());
            }
            ResourceEvent::VirtualTagApplied(e) => {
                self.set_tag(e.key.as_str(), e.value.as_str(), e.source.as_str(), e.confidence.value());
            }
            ResourceEvent::VirtualTagRemoved(e) => self.remove_tag(e.key.as_str()),
            ResourceEvent::VirtualTagsDerived(e) => {
                for c in &e.changes {
                    match &c.value {
                        // Derived values are certain: they follow from the tags and the rules.
                        Some(value) => self.set_tag(c.key.as_str(), value.as_str(), c.source.as_str(), 1.0),
                        None => self.remove_tag(c.key.as_str()),
                    }
                }
            }
        }
        true
    }

    /// Folds a judgement in; false when the document already has this one or a later one.
    pub fn judge(&mut self, compliance_version: u64, judgement: &Judgement, at: DateTime<Utc>) -> bool {
        if compliance_version <= self.compliance_version {
            return false;
        }
        self.compliance_version = compliance_version;
        self.compliance_status = if judgement.violated.is_empty() { "compliant" } else { "non_compliant" }.to_owned();
        self.compliance_score = Some(judgement.score);
        self.violated_policies = judgement.violated.iter().map(|p| p.to_string()).collect();
        self.violated_policies.sort();
        self.last_updated = Some(self.last_updated.map_or(at, |t| t.max(at)));
        true
    }

    /// A later decision that is not a judgement (a violation's transition) only moves the
    /// version, so a replay of it is recognised.
    pub fn pass(&mut self, compliance_version: u64) {
        self.compliance_version = self.compliance_version.max(compliance_version);
    }

    /// Shown to searches only once a resource event described it.
    pub fn described(&self) -> bool {
        self.version > 0
    }

    fn set_tag(&mut self, key: &str, value: &str, source: &str, confidence: f64) {
        let tag = DocTag { key: key.to_owned(), value: value.to_owned(), source: source.to_owned(), confidence };
        match self.tags.binary_search_by(|t| t.key.as_str().cmp(key)) {
            Ok(i) => self.tags[i] = tag,
            Err(i) => self.tags.insert(i, tag),
        }
    }

    fn remove_tag(&mut self, key: &str) {
        if let Ok(i) = self.tags.binary_search_by(|t| t.key.as_str().cmp(key)) {
            self.tags.remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use uuid::Uuid;
    use vtag_domain::resource::*;
    use vtag_domain::*;

    fn envelope(version: u64) -> EventEnvelope {
        EventEnvelope {
            event_id: Uuid::now_v7(),
            tenant: TenantId::parse("acme").unwrap(),
            aggregate_id: ResourceId::from_uuid(Uuid::from_u128(7)),
            aggregate_version: version,
            actor: Actor::parse("alice@acme.test").unwrap(),
            causation_id: Uuid::nil(),
            correlation_id: Uuid::nil(),
            occurred_at: Utc::now(),
            recorded_at: Utc::now(),
        }
    }

    fn observed(version: u64, name: &str) -> Recorded<ResourceEvent> {
        let event = ResourceEvent::ResourceObserved(ResourceObserved {
            provider: Provider::Aws,
            cloud_id: CloudResourceId::parse("i-0abc").unwrap(),
            description: ResourceDescription {
                account: "111".into(),
                region: "eu-west-1".into(),
                resource_type: "ec2:instance".into(),
                name: name.into(),
                metadata: BTreeMap::new(),
            },
            native_tags: BTreeMap::from([("Env".to_owned(), "PROD".to_owned())]),
        });
        Recorded { envelope: envelope(version), event }
    }

    fn applied(version: u64, key: &str, value: &str) -> Recorded<ResourceEvent> {
        let event = ResourceEvent::VirtualTagApplied(VirtualTagApplied {
            key: TagKey::parse(key).unwrap(),
            value: TagValue::parse(value).unwrap(),
            source: TagSource::Manual,
            confidence: Confidence::parse(0.9).unwrap(),
            previous: None,
        });
        Recorded { envelope: envelope(version), event }
    }

    fn derived(version: u64, key: &str, value: Option<&str>) -> Recorded<ResourceEvent> {
        let event = ResourceEvent::VirtualTagsDerived(VirtualTagsDerived {
            rule_set_version: 3,
            changes: vec![DerivedChange {
                key: TagKey::parse(key).unwrap(),
                value: value.map(|v| TagValue::parse(v).unwrap()),
                source: TagSource::RuleBased,
                origin: None,
                previous: None,
            }],
        });
        Recorded { envelope: envelope(version), event }
    }

    #[test]
    fn folds_a_description_and_virtual_tags_but_never_native_tags() {
        let mut doc = ResourceDoc::new("acme", "r1".into());
        assert!(!doc.described());
        for e in [observed(1, "Payments-API"), applied(2, "team", "payments"), derived(3, "env", Some("prod"))] {
            assert!(doc.apply(&e));
        }
        assert!(doc.described());
        assert_eq!(doc.version, 3);
        assert_eq!(doc.resource_name, "Payments-API");
        assert_eq!(doc.name_sort, "payments-api");
        assert_eq!((doc.provider.as_str(), doc.account.as_str()), ("aws", "111"));
        let tags: Vec<_> = doc.tags.iter().map(|t| (t.key.as_str(), t.value.as_str(), t.source.as_str(), t.confidence)).collect();
        assert_eq!(tags, [("env", "prod", "rule_based", 1.0), ("team", "payments", "manual", 0.9)]);
        assert!(!serde_json::to_string(&doc).unwrap().contains("PROD"), "native tags stay out of the index");
    }

    #[test]
    fn a_replayed_or_duplicated_event_changes_nothing() {
        let mut doc = ResourceDoc::new("acme", "r1".into());
        doc.apply(&observed(1, "a"));
        doc.apply(&applied(2, "team", "payments"));
        doc.apply(&derived(3, "team", None));
        let before = doc.clone();
        assert!(!doc.apply(&applied(2, "team", "payments")), "version 2 is already in");
        assert!(!doc.apply(&observed(1, "renamed")));
        assert_eq!(doc, before);
        assert!(doc.tags.is_empty(), "the derived removal took the key away");
    }

    #[test]
    fn judgements_fold_by_their_own_version_whatever_the_resource_version() {
        let mut doc = ResourceDoc::new("acme", "r1".into());
        let failing = Judgement { applicable: vec!["p1".into(), "p2".into()], violated: vec!["p2".into()], score: 50.0 };
        let passing = Judgement { applicable: vec!["p1".into(), "p2".into()], violated: vec![], score: 100.0 };
        assert!(doc.judge(2, &failing, Utc::now()), "a judgement can arrive before the resource's events");
        assert!(!doc.described());
        assert_eq!(doc.compliance_status, "non_compliant");
        assert!(!doc.judge(1, &passing, Utc::now()), "an older judgement does not win");
        doc.pass(3);
        assert!(!doc.judge(3, &passing, Utc::now()), "version 3 was a transition, already folded");
        assert!(doc.judge(4, &passing, Utc::now()));
        assert_eq!((doc.compliance_status.as_str(), doc.compliance_score), ("compliant", Some(100.0)));
        assert!(doc.violated_policies.is_empty());
        doc.apply(&observed(1, "a"));
        assert_eq!(doc.compliance_status, "compliant", "resource events keep the compliance");
    }

    #[test]
    fn a_document_read_back_from_the_index_folds_like_the_original() {
        let mut doc = ResourceDoc::new("acme", "r1".into());
        doc.apply(&observed(1, "a"));
        let mut back: ResourceDoc = serde_json::from_str(&serde_json::to_string(&doc).unwrap()).unwrap();
        assert_eq!(back, doc);
        let next = applied(2, "team", "x");
        assert!(back.apply(&next));
        assert!(doc.apply(&next));
        assert_eq!(back, doc);
    }
}
