//! Checking derived tags: what the domain derives locally for generated resources, what the read
//! model holds, and waiting for re-derivation jobs.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;
use vtag_domain::tagging::{derive, Origin, ResourceFacts};
use vtag_domain::{CloudResourceId, Provider, ResourceId, TenantId};
use vtag_inventory::GeneratedResource;
use vtag_tagging_config::ConfigDocument;

use crate::harness::eventually;
use crate::http::Api;

pub fn facts(r: &GeneratedResource) -> ResourceFacts {
    let o = &r.observed;
    ResourceFacts {
        provider: o.provider.to_owned(),
        account: o.account_id.clone(),
        region: o.region.clone(),
        resource_type: o.resource_type.to_owned(),
        name: o.name.clone(),
        native_tags: o.native_tags.clone(),
        monthly_cost: None,
    }
}

pub fn resource_id(r: &GeneratedResource) -> Uuid {
    let tenant = TenantId::parse("acme").unwrap();
    let provider = Provider::parse(r.observed.provider).unwrap();
    ResourceId::derive(&tenant, provider, &CloudResourceId::parse(&r.observed.resource_id).unwrap()).as_uuid()
}

/// (value, source, rule id) per key, for every resource: what the read model must hold.
pub type Tags = HashMap<Uuid, BTreeMap<String, (String, String, Option<String>)>>;

pub fn expected(resources: &[GeneratedResource], doc: &Value, version: u64) -> Tags {
    let config = ConfigDocument::from_json(&serde_json::to_vec(doc).unwrap()).unwrap().compile(version).unwrap();
    resources
        .iter()
        .map(|r| {
            let tags = derive(&config, &facts(r), &BTreeMap::new(), chrono::Utc::now())
                .into_iter()
                .map(|(k, t)| {
                    let (source, rule) = match t.origin {
                        Origin::Native { .. } => ("native", None),
                        Origin::Rule { rule_id } => ("rule_based", Some(rule_id)),
                        Origin::Default => ("rule_based", None),
                    };
                    (k, (t.value, source.to_owned(), rule))
                })
                .collect();
            (resource_id(r), tags)
        })
        .collect()
}

pub async fn read_model(pool: &sqlx::PgPool) -> Tags {
    let rows: Vec<(Uuid, String, String, String, Option<String>)> =
        sqlx::query_as("SELECT resource_id, tag_key, tag_value, source, rule_id FROM virtual_tags WHERE tenant = 'acme'")
            .fetch_all(pool)
            .await
            .unwrap();
    let mut out: Tags = HashMap::new();
    for (id, k, v, s, r) in rows {
        out.entry(id).or_default().insert(k, (v, s, r));
    }
    out
}

pub async fn wait_for_job(read: &Api, job: &str) -> Value {
    eventually(Duration::from_secs(120), "the re-derivation job to finish", || async {
        let r = read.get(job).await;
        (r.status == 200 && r.body["done"] == true).then_some(r.body)
    })
    .await
}

pub fn assert_same(actual: &Tags, expected: &Tags) {
    let mut differences = Vec::new();
    for (id, want) in expected {
        let got = actual.get(id).cloned().unwrap_or_default();
        if &got != want {
            differences.push(format!("{id}: read model {got:?} != derived {want:?}"));
        }
    }
    assert!(differences.is_empty(), "{} resources differ, e.g.:\n{}", differences.len(), differences[..differences.len().min(5)].join("\n"));
    assert_eq!(actual.len(), expected.iter().filter(|(_, t)| !t.is_empty()).count());
}

