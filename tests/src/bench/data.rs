//! Synthetic but realistic inventory for the benchmark: every resource unique, names, types, native
//! tags and metadata varied across three clouds (deterministic: the same N gives the same data).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;
use vtag_domain::resource::ObserveResource;
use vtag_domain::{
    decide, Actor, CloudResourceId, CommandContext, NativeTags, Provider, ResourceCommand, ResourceDescription,
    ResourceId, ResourceState, TenantId,
};
use vtag_eventlog::EventCodec;

/// One observed resource, as a collector would report it.
#[derive(Debug, Clone)]
pub struct Resource {
    pub provider: &'static str,
    pub cloud_id: String,
    pub account: String,
    pub region: String,
    pub resource_type: String,
    pub name: String,
    pub native_tags: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
}

/// splitmix64: tiny, deterministic, good enough to vary data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

const APPS: &[&str] = &[
    "checkout", "payments", "search", "catalog", "auth", "billing", "ledger", "inventory", "shipping", "reco",
    "notifications", "analytics", "gateway", "profile", "media", "pricing", "fraud", "reporting", "crm", "etl",
];
const ENVS: &[&str] = &["prod", "production", "PROD", "Prod", "stg", "staging", "Stage", "dev", "Dev", "development", "qa", "sandbox"];
const ROLES: &[&str] = &["web", "api", "worker", "db", "cache", "queue", "batch", "cron", "proxy", "stream"];
const TEAMS: &[&str] = &["Platform", "platform-team", "Payments", "payments", "SRE", "sre", "Data", "data-eng", "Growth", "core"];
const OWNERS: &[&str] = &["alice@acme.test", "bob@acme.test", "carol@acme.test", "dave", "erin.smith", "ops-bot"];
const AWS_REGIONS: &[&str] = &["us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"];
const AZ_REGIONS: &[&str] = &["westeurope", "northeurope", "eastus", "eastus2", "westus2", "uksouth"];
const GCP_ZONES: &[&str] = &["us-central1-a", "us-east1-b", "europe-west1-c", "europe-west4-a", "asia-east1-b"];
const EC2_TYPES: &[&str] = &["m5.large", "m5.xlarge", "c6i.2xlarge", "t3.medium", "r6g.large", "m7g.medium"];
const AZ_SKUS: &[&str] = &["Standard_D2s_v5", "Standard_D4s_v5", "Standard_B2ms", "Standard_E4s_v5"];
const GCP_TYPES: &[&str] = &["e2-standard-2", "e2-standard-4", "n2-standard-8", "c3-standard-4"];

/// `n` unique resources.
pub fn generate(n: usize, seed: u64) -> Vec<Resource> {
    let mut rng = Rng::new(seed);
    let accounts: Vec<String> = (0..40).map(|_| format!("{:012}", rng.next_u64() % 1_000_000_000_000)).collect();
    let subscriptions: Vec<Uuid> = (0..12).map(|_| Uuid::from_u64_pair(rng.next_u64(), rng.next_u64())).collect();
    let projects: Vec<String> = (0..15).map(|i| format!("{}-{}-{:04x}", rng.pick(APPS), ["prj", "proj", "p"][i % 3], rng.next_u64() & 0xffff)).collect();
    (0..n)
        .map(|i| {
            let app = rng.pick(APPS);
            let env = rng.pick(ENVS);
            let role = rng.pick(ROLES);
            let name = format!("{app}-{}-{role}-{i:06}", env.to_lowercase());
            let mut tags = BTreeMap::new();
            let env_key = ["Env", "env", "Environment", "environment", "stage"][rng.below(5)];
            tags.insert(env_key.to_owned(), env.to_owned());
            if rng.chance(80) {
                tags.insert(["team", "Team", "owner-team"][rng.below(3)].to_owned(), rng.pick(TEAMS).to_owned());
            }
            if rng.chance(50) {
                tags.insert("Owner".to_owned(), rng.pick(OWNERS).to_owned());
            }
            if rng.chance(60) {
                tags.insert(["CostCenter", "cost-center", "cost_centre"][rng.below(3)].to_owned(), format!("CC-{}", 1000 + rng.below(60)));
            }
            if rng.chance(40) {
                tags.insert("Application".to_owned(), app.to_owned());
            }
            let mut metadata = BTreeMap::new();
            let r = rng.below(100);
            let res = if r < 60 {
                let region = rng.pick(AWS_REGIONS).to_owned();
                let account = accounts[rng.below(accounts.len())].clone();
                tags.insert("Name".to_owned(), name.clone());
                let (rtype, cloud_id) = match rng.below(6) {
                    0..=2 => {
                        metadata.insert("instance_type".into(), rng.pick(EC2_TYPES).into());
                        metadata.insert("platform".into(), ["linux", "windows"][rng.below(2)].into());
                        ("ec2:instance", format!("arn:aws:ec2:{region}:{account}:instance/i-{:017x}", rng.next_u64() >> 4 ^ i as u64))
                    }
                    3 => {
                        metadata.insert("engine".into(), ["postgres", "mysql", "aurora-postgresql"][rng.below(3)].into());
                        ("rds:db", format!("arn:aws:rds:{region}:{account}:db:{name}"))
                    }
                    4 => ("s3:bucket", format!("arn:aws:s3:::{name}-{:08x}", rng.next_u64() as u32)),
                    _ => {
                        metadata.insert("runtime".into(), ["python3.12", "nodejs20.x", "provided.al2023"][rng.below(3)].into());
                        ("lambda:function", format!("arn:aws:lambda:{region}:{account}:function:{name}"))
                    }
                };
                Resource { provider: "aws", cloud_id, account, region, resource_type: rtype.into(), name, native_tags: tags, metadata }
            } else if r < 85 {
                let region = rng.pick(AZ_REGIONS).to_owned();
                let sub = subscriptions[rng.below(subscriptions.len())];
                let rg = format!("rg-{app}-{}", env.to_lowercase());
                metadata.insert("sku".into(), rng.pick(AZ_SKUS).into());
                let cloud_id = format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}");
                Resource {
                    provider: "azure",
                    cloud_id,
                    account: sub.to_string(),
                    region,
                    resource_type: "Microsoft.Compute/virtualMachines".into(),
                    name,
                    native_tags: tags,
                    metadata,
                }
            } else {
                let zone = rng.pick(GCP_ZONES);
                let project = projects[rng.below(projects.len())].clone();
                metadata.insert("machine_type".into(), rng.pick(GCP_TYPES).into());
                // GCP labels are lower-case.
                let tags = tags.into_iter().map(|(k, v)| (k.to_lowercase(), v.to_lowercase())).collect();
                let cloud_id = format!("//compute.googleapis.com/projects/{project}/zones/{zone}/instances/{name}");
                Resource {
                    provider: "gcp",
                    cloud_id,
                    account: project,
                    region: zone[..zone.len() - 2].to_owned(),
                    resource_type: "compute.googleapis.com/Instance".into(),
                    name,
                    native_tags: tags,
                    metadata,
                }
            };
            res
        })
        .collect()
}

impl Resource {
    pub fn to_json(&self) -> Value {
        json!({
            "provider": self.provider,
            "resource_id": self.cloud_id,
            "account_id": self.account,
            "region": self.region,
            "resource_type": self.resource_type,
            "name": self.name,
            "native_tags": self.native_tags,
            "metadata": self.metadata,
        })
    }

    pub fn command(&self, observed_at: DateTime<Utc>) -> ObserveResource {
        ObserveResource {
            provider: Provider::parse(self.provider).expect("provider"),
            cloud_id: CloudResourceId::parse(&self.cloud_id).expect("cloud id"),
            description: ResourceDescription::parse(
                self.account.clone(),
                self.region.clone(),
                self.resource_type.clone(),
                self.name.clone(),
                self.metadata.clone(),
            )
            .expect("description"),
            native_tags: NativeTags::parse(self.native_tags.clone()).expect("native tags"),
            observed_at,
        }
    }

    pub fn id(&self, tenant: &TenantId) -> ResourceId {
        ResourceId::derive(tenant, Provider::parse(self.provider).expect("provider"), &CloudResourceId::parse(&self.cloud_id).expect("cloud id"))
    }
}

/// Request bodies of `batch` resources each (`{"resources": [...]}`), serialized ahead of time.
pub fn request_bodies(resources: &[Resource], batch: usize) -> Vec<Vec<u8>> {
    resources
        .chunks(batch)
        .map(|chunk| {
            let items: Vec<Value> = chunk.iter().map(Resource::to_json).collect();
            serde_json::to_vec(&json!({ "resources": items })).expect("json")
        })
        .collect()
}

/// The records (key, value) the command API would append for each resource: the real Avro encoding of
/// its `ResourceObserved` (and `VirtualTagsDerived`) events, so the raw broker baseline moves exactly
/// the same bytes.
pub async fn encoded_events(resources: &[Resource], tenant: &str, codec: &EventCodec) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let tenant = TenantId::parse(tenant).map_err(|e| anyhow::anyhow!("tenant: {}", e.message))?;
    let actor = Actor::parse("collector:bench").map_err(|e| anyhow::anyhow!("actor: {}", e.message))?;
    let now = Utc::now();
    let correlation_id = Uuid::now_v7();
    let mut out = Vec::with_capacity(resources.len());
    // The same configuration the command API starts every tenant with, so the baseline appends the
    // same events (the observation and its derived tags).
    let config = vtag_domain::tagging::TaggingConfig::initial();
    for r in resources {
        let id = r.id(&tenant);
        let ctx = CommandContext {
            command_id: Uuid::now_v7(),
            tenant: tenant.clone(),
            actor: actor.clone(),
            correlation_id,
            occurred_at: now,
            recorded_at: now,
        };
        let events = decide(&ResourceState::default(), id, &ResourceCommand::Observe(r.command(now)), &ctx, &config)
            .map_err(|e| anyhow::anyhow!("decide: {e:?}"))?;
        for e in &events {
            out.push((id.to_string(), codec.encode(e).await?));
        }
    }
    Ok(out)
}

fn csv_text(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

/// CSV rows shaped like `resources` (what the projector writes for a first observation).
pub fn resources_csv(resources: &[Resource], tenant: &str) -> String {
    let t = TenantId::parse(tenant).expect("tenant");
    let now = Utc::now().to_rfc3339();
    let mut out = String::with_capacity(resources.len() * 300);
    for r in resources {
        csv_text(&mut out, tenant);
        out.push(',');
        out.push_str(&r.id(&t).to_string());
        for s in [r.provider, &r.cloud_id, &r.resource_type, &r.name, &r.account, &r.region] {
            out.push(',');
            csv_text(&mut out, s);
        }
        out.push(',');
        csv_text(&mut out, &serde_json::to_string(&r.metadata).expect("json"));
        out.push_str(",1,");
        out.push_str(&now);
        out.push(',');
        out.push_str(&now);
        out.push('\n');
    }
    out
}

/// CSV rows shaped like `tag_audit` for the same first observations (the projector writes one per event).
pub fn audit_csv(resources: &[Resource], tenant: &str, partitions: i32) -> String {
    let t = TenantId::parse(tenant).expect("tenant");
    let now = Utc::now().to_rfc3339();
    let correlation = Uuid::now_v7();
    let mut offsets = vec![0i64; partitions as usize];
    let mut out = String::with_capacity(resources.len() * 300);
    for r in resources {
        let id = r.id(&t).to_string();
        let p = vtag_eventlog::partition_for(id.as_bytes(), partitions);
        let off = offsets[p as usize];
        offsets[p as usize] += 1;
        // event_id, tenant, resource_id, aggregate_version, action, tag_key, old_value, new_value, source,
        // confidence, performed_by, causation_id, correlation_id, occurred_at, recorded_at, log_partition, log_offset
        out.push_str(&format!(
            "{},\"{tenant}\",{id},1,\"ResourceObserved\",,,,,,\"collector:bench\",{},{correlation},{now},{now},{p},{off}\n",
            Uuid::now_v7(),
            Uuid::now_v7()
        ));
    }
    out
}
