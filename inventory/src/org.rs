//! The organisation behind an inventory: its teams, what each runs, who works there, and the
//! business attributes that follow from the team. Everything the truth says is derived from here,
//! so a rule engine has real regularities to find (name → application, account → owner,
//! team → cost center).

/// Environments, with the canonical value of the seed schema and the short form used in names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Production,
    Staging,
    Development,
    Sandbox,
    Test,
}

impl Environment {
    pub const ALL: [Environment; 5] =
        [Self::Production, Self::Staging, Self::Development, Self::Sandbox, Self::Test];

    /// How often an account (and so, mostly, its resources) is of each environment.
    pub const WEIGHTS: [(Environment, u32); 5] =
        [(Self::Production, 40), (Self::Staging, 20), (Self::Development, 25), (Self::Sandbox, 10), (Self::Test, 5)];

    /// The value in the seed schema's `environment` key.
    pub fn canonical(self) -> &'static str {
        match self {
            Self::Production => "production",
            Self::Staging => "staging",
            Self::Development => "development",
            Self::Sandbox => "sandbox",
            Self::Test => "test",
        }
    }

    /// The spelling in resource and account names.
    pub fn short(self) -> &'static str {
        match self {
            Self::Production => "prod",
            Self::Staging => "stg",
            Self::Development => "dev",
            Self::Sandbox => "sbx",
            Self::Test => "test",
        }
    }
}

#[derive(Debug)]
pub struct App {
    /// One lower-case word: names start with it, and Azure storage account names (24 characters at
    /// most) must still fit it with an environment and a serial.
    pub name: &'static str,
    pub project: Option<&'static str>,
    /// The data-classification of the app's data stores.
    pub data: &'static str,
}

#[derive(Debug)]
pub struct Team {
    pub name: &'static str,
    pub business_unit: &'static str,
    pub cost_center: &'static str,
    /// Applies to the team's production and staging resources.
    pub compliance: Option<&'static str>,
    pub apps: &'static [App],
    /// Local parts of the members' e-mail addresses; the first is the usual account owner.
    pub people: &'static [&'static str],
}

const fn app(name: &'static str, project: Option<&'static str>, data: &'static str) -> App {
    App { name, project, data }
}

pub const TEAMS: &[Team] = &[
    Team {
        name: "platform",
        business_unit: "technology",
        cost_center: "engineering",
        compliance: None,
        apps: &[
            app("ci", None, "internal"),
            app("monitoring", Some("observability"), "internal"),
            app("logging", Some("observability"), "internal"),
            app("bastion", None, "internal"),
        ],
        people: &["maria.garcia", "tom.becker", "li.wei"],
    },
    Team {
        name: "web",
        business_unit: "digital",
        cost_center: "engineering",
        compliance: None,
        apps: &[
            app("web", Some("storefront"), "public"),
            app("cdn", Some("storefront"), "public"),
            app("portal", Some("portal-v2"), "internal"),
            app("search", None, "internal"),
        ],
        people: &["james.smith", "sofia.rossi", "ahmed.khan"],
    },
    Team {
        name: "payments",
        business_unit: "commerce",
        cost_center: "finance",
        compliance: Some("pci-dss"),
        apps: &[
            app("payments", Some("checkout-v2"), "restricted"),
            app("ledger", None, "restricted"),
            app("billing", Some("checkout-v2"), "confidential"),
            app("fraud", Some("fraud-ml"), "confidential"),
        ],
        people: &["emma.johnson", "lucas.martin", "priya.patel"],
    },
    Team {
        name: "data",
        business_unit: "technology",
        cost_center: "engineering",
        compliance: None,
        apps: &[
            app("etl", Some("lakehouse"), "internal"),
            app("analytics", Some("lakehouse"), "confidential"),
            app("warehouse", None, "confidential"),
            app("ml", Some("fraud-ml"), "internal"),
        ],
        people: &["olga.ivanova", "daniel.kim", "chloe.dubois"],
    },
    Team {
        name: "growth",
        business_unit: "marketing",
        cost_center: "marketing",
        compliance: Some("gdpr"),
        apps: &[
            app("campaigns", None, "internal"),
            app("email", None, "confidential"),
            app("recs", Some("personalization"), "internal"),
        ],
        people: &["noah.wilson", "mia.schmidt", "kenji.tanaka"],
    },
    Team {
        name: "sales-ops",
        business_unit: "sales",
        cost_center: "sales",
        compliance: None,
        apps: &[app("crm", Some("crm-migration"), "confidential"), app("quotes", None, "internal")],
        people: &["ava.brown", "mateo.lopez"],
    },
    Team {
        name: "identity",
        business_unit: "technology",
        cost_center: "engineering",
        compliance: Some("soc2"),
        apps: &[app("auth", Some("sso"), "restricted"), app("directory", Some("sso"), "confidential")],
        people: &["isabella.moore", "yusuf.demir"],
    },
    Team {
        name: "clinical",
        business_unit: "health",
        cost_center: "research",
        compliance: Some("hipaa"),
        apps: &[app("records", Some("ehr"), "sensitive"), app("telehealth", Some("ehr"), "sensitive")],
        people: &["grace.lee", "omar.haddad"],
    },
];

/// Company names, one per seed: bucket names and e-mail domains differ between tenants.
pub const ORGS: &[&str] = &["acme", "globex", "initech", "umbrella", "hooli", "vandelay", "wayne", "tyrell"];

pub fn email(person: &str, org: &str) -> String {
    format!("{person}@{org}.io")
}
