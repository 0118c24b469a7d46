//! A tenant's cloud accounts: AWS accounts, Azure subscriptions, GCP projects. Each belongs to one
//! team and one environment and has one owner, as landing-zone setups make it, so "account →
//! owner" and "account → environment" are rules that mostly hold.

use crate::clouds::Provider;
use crate::org::{email, Environment, Team, TEAMS};
use crate::prng::Rng;

/// The PRNG domain of accounts (resources have their own).
const DOMAIN: u64 = 1;

#[derive(Debug, Clone)]
pub struct Account {
    pub(crate) provider: Provider,
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) team: &'static Team,
    pub(crate) owner: String,
    pub(crate) env: Environment,
    /// Where the account deploys: its primary region first.
    pub(crate) regions: Vec<usize>,
    /// How much of the estate lives here, relative to the other accounts.
    pub(crate) weight: u32,
}

impl Account {
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// As in `account_id`: 12 digits, a subscription UUID, or a project id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The account alias / subscription or project display name (`acme-payments-prod`).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn team(&self) -> &'static str {
        self.team.name
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The canonical environment value (`production`, …).
    pub fn environment(&self) -> &'static str {
        self.env.canonical()
    }

    pub fn regions(&self) -> impl Iterator<Item = &'static str> + '_ {
        let all = self.provider.regions();
        self.regions.iter().map(move |r| all[*r].name)
    }
}

pub(crate) fn accounts(seed: u64, org: &str, count: usize) -> Vec<Account> {
    // every team gets an account before any gets a second, in an order the seed decides
    let mut teams: Vec<&'static Team> = TEAMS.iter().collect();
    let mut rng = Rng::stream(seed, DOMAIN, u64::MAX);
    for i in (1..teams.len()).rev() {
        teams.swap(i, rng.below(i as u64 + 1) as usize);
    }
    (0..count).map(|k| account(seed, org, k, teams.get(k).copied())).collect()
}

fn account(seed: u64, org: &str, k: usize, team: Option<&'static Team>) -> Account {
    let mut rng = Rng::stream(seed, DOMAIN, k as u64);
    // the first three accounts cover the three clouds; then half AWS, a quarter each Azure and
    // GCP, as in most multi-cloud estates
    let provider = match k {
        0..=2 => [Provider::Aws, Provider::Azure, Provider::Gcp][k],
        _ => rng.weighted(&[(Provider::Aws, 2), (Provider::Azure, 1), (Provider::Gcp, 1)], |(_, w)| *w).0,
    };
    let team = team.unwrap_or_else(|| rng.pick(TEAMS));
    let env = rng.weighted(&Environment::WEIGHTS, |(_, w)| *w).0;
    let person = if rng.chance(0.7) { team.people[0] } else { *rng.pick(team.people) };
    let name = format!("{org}-{}-{}", team.name, env.short());
    let id = match provider {
        Provider::Aws => format!("{}{:011}", rng.between(1, 9), rng.between(0, 99_999_999_999)),
        Provider::Azure => {
            let bytes = (u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())).to_be_bytes();
            uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
        }
        // project ids are global, hence the suffix GCP proposes when the readable one is taken
        Provider::Gcp => format!("{name}-{}", rng.between(1000, 9999)),
    };
    let all = provider.regions();
    let mut regions = vec![rng.weighted_index(all, |r| r.weight)];
    if rng.chance(0.3) {
        let second = rng.weighted_index(all, |r| r.weight);
        if second != regions[0] {
            regions.push(second);
        }
    }
    let weight = rng.between(3, 10) as u32 * if env == Environment::Production { 2 } else { 1 };
    Account { provider, id, name, team, owner: email(person, org), env, regions, weight }
}
