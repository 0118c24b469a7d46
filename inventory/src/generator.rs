//! The generator: a tenant's accounts once, then every resource from the seed and its index alone,
//! so any single resource can be regenerated without the ones before it.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::ensure;
use serde::Serialize;

use crate::accounts::{self, Account};
use crate::clouds::{Class, Provider, Shape, Site};
use crate::messy::{self, Mess, Subject};
use crate::naming::{self, NameParts};
use crate::org::{email, App, Environment, Team, ORGS, TEAMS};
use crate::prng::{scramble, Rng};
use crate::taxonomy::Key;

/// PRNG domains (accounts have theirs in `accounts`).
const ORG_DOMAIN: u64 = 0;
const RESOURCE_DOMAIN: u64 = 2;

/// Resources that run in another team's account (shared and legacy accounts).
const CROSS_TEAM: f64 = 0.12;
/// Resources of another environment than their account's (the odd test box in prod).
const OFF_ENV: f64 = 0.1;
/// Resources in their team's account whose owner is not the account owner.
const OTHER_OWNER: f64 = 0.1;
/// AWS instances and volumes without a `Name` tag, known only by their id.
const UNNAMED: f64 = 0.08;
/// Creation times fall between 2019-01-01 and 2025-06-30.
const CREATED: (u64, u64) = (1_546_300_800, 1_751_241_600);

#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    pub seed: u64,
    /// AWS accounts, Azure subscriptions and GCP projects together (half AWS).
    pub accounts: usize,
    pub mess: Mess,
}

impl GeneratorConfig {
    /// A dozen accounts and the default mess.
    pub fn new(seed: u64) -> Self {
        Self { seed, accounts: 12, mess: Mess::default() }
    }
}

/// One resource exactly as a collector posts it to `POST /api/v1/resources/observe`
/// (`observed_at` omitted: the API stamps it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedItem {
    pub provider: &'static str,
    /// The cloud's id: ARN, Azure resource id, GCP full resource name.
    pub resource_id: String,
    pub account_id: String,
    pub region: String,
    pub resource_type: &'static str,
    pub name: String,
    pub native_tags: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedResource {
    pub observed: ObservedItem,
    /// The clean canonical tags (keys and values of the seed taxonomy) the resource should carry.
    pub truth: BTreeMap<String, String>,
    /// Native tag keys whose value is deliberately wrong or a placeholder: no normalization can
    /// recover the truth from them. Every other native tag of the taxonomy normalizes to the truth.
    pub wrong_tags: BTreeSet<String>,
}

pub struct Generator {
    config: GeneratorConfig,
    org: &'static str,
    accounts: Vec<Account>,
    /// Running sums of the accounts' weights, to draw an account in O(log n).
    cumulative: Vec<u64>,
}

impl Generator {
    pub fn new(config: GeneratorConfig) -> anyhow::Result<Self> {
        ensure!((1..=10_000).contains(&config.accounts), "accounts must be between 1 and 10000, not {}", config.accounts);
        for (name, rate) in config.mess.rates() {
            ensure!((0.0..=1.0).contains(&rate), "{name} must be a probability between 0 and 1, not {rate}");
        }
        let org = *Rng::stream(config.seed, ORG_DOMAIN, 0).pick(ORGS);
        let accounts = accounts::accounts(config.seed, org, config.accounts);
        let cumulative = accounts
            .iter()
            .scan(0, |sum, a| {
                *sum += u64::from(a.weight);
                Some(*sum)
            })
            .collect();
        Ok(Self { config, org, accounts, cumulative })
    }

    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }

    /// The tenant's name, lower-case (`acme`).
    pub(crate) fn org(&self) -> &'static str {
        self.org
    }

    /// The tenant's accounts, subscriptions and projects, e.g. to build "account → owner" rules.
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// Resources `0..count`, generated lazily: memory stays flat however many are drawn.
    pub fn resources(&self, count: usize) -> impl Iterator<Item = GeneratedResource> + '_ {
        (0..count as u64).map(|i| self.resource(i))
    }

    /// Resource `index`, the same whatever else is generated.
    pub fn resource(&self, index: u64) -> GeneratedResource {
        let mut rng = Rng::stream(self.config.seed, RESOURCE_DOMAIN, index);
        let total = *self.cumulative.last().expect("at least one account");
        let draw = rng.below(total);
        let account = &self.accounts[self.cumulative.partition_point(|c| *c <= draw)];
        let provider = account.provider;

        let own_team = !rng.chance(CROSS_TEAM);
        let team: &Team = if own_team { account.team } else { rng.pick(TEAMS) };
        let env = if rng.chance(OFF_ENV) { rng.weighted(&Environment::WEIGHTS, |(_, w)| *w).0 } else { account.env };
        let owner = if own_team && !rng.chance(OTHER_OWNER) {
            account.owner.clone()
        } else {
            let person = *rng.pick(team.people);
            email(person, self.org)
        };
        let shape = rng.weighted(provider.shapes(), |(_, w)| *w).0;
        let app = rng.pick(team.apps);
        let role = *rng.pick(shape.roles());
        let region = &provider.regions()[*rng.pick(&account.regions)];
        let zone = match (provider, region.zones.is_empty()) {
            (_, true) => String::new(),
            (Provider::Gcp, false) => format!("{}-{}", region.name, rng.pick(region.zones)),
            (_, false) => format!("{}{}", region.name, rng.pick(region.zones)),
        };

        // a bijection of the index: distinct per resource, yet not a visible counter
        let unique = scramble(scramble(index) ^ self.config.seed);
        let parts = NameParts { app: app.name, role, env, serial: index + 1, org: self.org };
        let mut name = naming::name(&mut rng, shape, &parts);
        let mut name_tag = None;
        if shape.named_by_tag() {
            if rng.chance(UNNAMED) {
                name = shape.short_id(unique).expect("resources named by tag have a short id");
            } else {
                name_tag = Some(name.clone());
            }
        }
        let group = format!("{}-{}", app.name, env.short());
        let site = Site { account: &account.id, region: region.name, zone: &zone, group: &group };
        let resource_id = shape.cloud_id(&site, &name, unique);
        let created = created_at(&mut rng);

        let truth = truth(team, app, env, shape, &owner);
        let subject = Subject { provider, shape, app: app.name, role, env: env.short(), created: &created[..10] };
        let (mut native_tags, wrong_tags) = messy::native_tags(&mut rng, &self.config.mess, &subject, &truth);
        let truth = truth.iter().map(|(k, v)| (k.name().to_owned(), (*v).to_owned())).collect();
        if let Some(n) = name_tag {
            native_tags.insert("Name".to_owned(), n);
        }

        let mut metadata = shape.metadata(&mut rng);
        metadata.insert("account_name".to_owned(), account.name.clone());
        metadata.insert("created_at".to_owned(), created);
        match provider {
            Provider::Azure => {
                metadata.insert("resource_group".to_owned(), format!("rg-{group}"));
            }
            Provider::Aws if shape.named_by_tag() => {
                metadata.insert("availability_zone".to_owned(), zone.clone());
            }
            _ => {}
        }

        GeneratedResource {
            observed: ObservedItem {
                provider: provider.as_str(),
                resource_id,
                account_id: account.id.clone(),
                region: if shape.zonal() { zone } else { region.name.to_owned() },
                resource_type: shape.resource_type(),
                name,
                native_tags,
                metadata,
            },
            truth,
            wrong_tags,
        }
    }
}

/// The tags the resource should carry, all following from its team, app, environment and kind.
fn truth<'a>(team: &'a Team, app: &'a App, env: Environment, shape: Shape, owner: &'a str) -> Vec<(Key, &'a str)> {
    let class = shape.class();
    let prod = env == Environment::Production;
    let live = prod || env == Environment::Staging;
    let mut truth = vec![
        (Key::Environment, env.canonical()),
        (Key::CostCenter, team.cost_center),
        (Key::Owner, owner),
        (Key::Team, team.name),
        (Key::Application, app.name),
        (Key::BusinessUnit, team.business_unit),
    ];
    if let Some(project) = app.project {
        truth.push((Key::Project, project));
    }
    if matches!(class, Class::ObjectStore | Class::Database) {
        truth.push((Key::DataClassification, app.data));
    }
    if live && matches!(class, Class::Compute | Class::Disk | Class::Database) {
        truth.push((Key::Backup, if prod { "daily" } else { "weekly" }));
    }
    if class == Class::Compute {
        truth.push((Key::AutoStop, if prod { "never" } else { "nightly" }));
    }
    if let (true, Some(framework)) = (live, team.compliance) {
        truth.push((Key::Compliance, framework));
    }
    truth
}

/// RFC 3339, second precision, UTC.
fn created_at(rng: &mut Rng) -> String {
    let secs = rng.between(CREATED.0, CREATED.1) as i64;
    let time = chrono::DateTime::from_timestamp(secs, 0).expect("within chrono's range");
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
