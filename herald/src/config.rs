//! The herald's configuration: channels (where alerts can go) and routes (which alerts go where),
//! one YAML or JSON file (`VTAG_HERALD_CONFIG`, docs/herald.md). Secrets are never in the file: a
//! channel names the environment variable that holds its secret (`secret_env`, `password_env`,
//! `url_env`). Every mistake is reported with its path and, in YAML, its line, all at once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::anyhow;
use lettre::message::Mailbox;
use reqwest::Url;
use serde::Deserialize;
use vtag_documents::codec::{compile_yaml, from_json};
use vtag_documents::DocError;
use vtag_domain::compliance::Severity;
use vtag_domain::TenantId;

/// The violation transitions that can be alerted (`ViolationOpened` — pending, inside its grace
/// period — never is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Alertable {
    Due,
    Escalated,
    Resolved,
}

impl Alertable {
    pub const ALL: [Alertable; 3] = [Alertable::Due, Alertable::Escalated, Alertable::Resolved];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Due => "due",
            Self::Escalated => "escalated",
            Self::Resolved => "resolved",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str().eq_ignore_ascii_case(raw.trim()))
    }
}

// ---------------------------------------------------------------- the document ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigDoc {
    #[serde(default)]
    format_version: Option<u32>,
    #[serde(default)]
    channels: Vec<ChannelDoc>,
    #[serde(default)]
    routes: Vec<RouteDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelDoc {
    id: String,
    tenant: String,
    kind: String,
    #[serde(default)]
    url: Option<String>,
    /// The URL is a secret of its own (a Slack incoming webhook): the variable that holds it.
    #[serde(default)]
    url_env: Option<String>,
    #[serde(default)]
    secret_env: Option<String>,
    #[serde(default)]
    smtp: Option<SmtpDoc>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmtpDoc {
    host: String,
    #[serde(default = "default_smtp_port")]
    port: u16,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password_env: Option<String>,
}

fn default_smtp_port() -> u16 {
    25
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteDoc {
    #[serde(default)]
    name: Option<String>,
    tenant: String,
    #[serde(default, rename = "match")]
    matches: MatchDoc,
    channels: Vec<String>,
    #[serde(default)]
    to_escalation_contact: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchDoc {
    #[serde(default)]
    severities: Vec<String>,
    /// Policy ids.
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default)]
    teams: Vec<String>,
    /// `due`, `escalated`, `resolved`; default: due and escalated.
    #[serde(default)]
    transitions: Vec<String>,
}

// ---------------------------------------------------------------- compiled ----

#[derive(Debug, Clone)]
pub struct Channel {
    pub id: String,
    pub tenant: String,
    pub target: Target,
}

#[derive(Clone)]
pub enum Target {
    /// A JSON POST signed with HMAC-SHA256.
    Webhook { url: Url, secret: String },
    /// A Slack incoming webhook (its URL is the credential).
    Slack { url: Url },
    /// Email over SMTP (plain: this build has no TLS stack).
    Email { host: String, port: u16, credentials: Option<(String, String)>, from: Mailbox, to: Vec<Mailbox> },
}

impl Target {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Webhook { .. } => "webhook",
            Self::Slack { .. } => "slack",
            Self::Email { .. } => "email",
        }
    }
}

// Secrets (and Slack URLs, which are secrets) stay out of logs and panics.
impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Webhook { url, .. } => f.debug_struct("Webhook").field("url", &url.as_str()).finish_non_exhaustive(),
            Self::Slack { url } => f.debug_struct("Slack").field("host", &url.host_str()).finish_non_exhaustive(),
            Self::Email { host, port, from, to, .. } => f
                .debug_struct("Email")
                .field("host", host)
                .field("port", port)
                .field("from", &from.to_string())
                .field("to", &to.iter().map(ToString::to_string).collect::<Vec<_>>())
                .finish_non_exhaustive(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    pub tenant: String,
    /// Empty: any.
    pub severities: BTreeSet<Severity>,
    pub policies: BTreeSet<String>,
    /// Lowercase; empty: any team, and resources without one.
    pub teams: BTreeSet<String>,
    pub transitions: BTreeSet<Alertable>,
    pub channels: Vec<String>,
    pub to_escalation_contact: bool,
}

/// What routing looks at.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub tenant: &'a str,
    /// None when the violation's opening was not seen (its details are unknown).
    pub severity: Option<Severity>,
    pub policy_id: &'a str,
    pub team: Option<&'a str>,
    pub transition: Alertable,
}

impl Route {
    pub fn matches(&self, f: &Facts<'_>) -> bool {
        self.tenant == f.tenant
            && self.transitions.contains(&f.transition)
            && (self.severities.is_empty() || f.severity.is_some_and(|s| self.severities.contains(&s)))
            && (self.policies.is_empty() || self.policies.contains(f.policy_id))
            && (self.teams.is_empty() || f.team.is_some_and(|t| self.teams.contains(&t.to_ascii_lowercase())))
    }
}

/// One channel an alert goes to, and whether its escalation contact is added (email).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub channel: String,
    pub escalation_contact: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Config {
    pub channels: BTreeMap<String, Channel>,
    pub routes: Vec<Route>,
}

impl Config {
    /// Reads the file at `path` (`.json`: JSON; anything else: YAML); `secret` resolves the
    /// variables the channels name. The error names the file and every mistake in it.
    pub fn load(path: &Path, secret: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow!("cannot read the herald configuration {}: {e}", path.display()))?;
        let json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
        Self::parse(&text, json, secret).map_err(|errors| {
            let listed: Vec<String> = errors.iter().map(|e| format!("  - {e} [{}]", e.rule)).collect();
            anyhow!("the herald configuration {} is invalid:\n{}", path.display(), listed.join("\n"))
        })
    }

    pub fn parse(text: &str, json: bool, secret: impl Fn(&str) -> Option<String>) -> Result<Self, Vec<DocError>> {
        let compile = |doc: &ConfigDoc| compile(doc, &secret);
        if json {
            compile(&from_json::<ConfigDoc>(text.as_bytes())?)
        } else {
            compile_yaml(text, compile).map(|(_, config)| config)
        }
    }

    /// The channels an alert goes to: every matching route's, each once, only the tenant's own.
    pub fn route(&self, facts: &Facts<'_>) -> Vec<Routed> {
        let mut out: BTreeMap<&str, bool> = BTreeMap::new();
        for r in self.routes.iter().filter(|r| r.matches(facts)) {
            for id in &r.channels {
                let Some(channel) = self.channels.get(id) else { continue };
                if channel.tenant != facts.tenant {
                    continue; // refused when loading; never crossed, whatever happens
                }
                let contact = r.to_escalation_contact && matches!(channel.target, Target::Email { .. }) && facts.transition == Alertable::Escalated;
                *out.entry(id).or_default() |= contact;
            }
        }
        out.into_iter().map(|(channel, escalation_contact)| Routed { channel: channel.to_owned(), escalation_contact }).collect()
    }
}

fn compile(doc: &ConfigDoc, secret: &dyn Fn(&str) -> Option<String>) -> Result<Config, Vec<DocError>> {
    let mut errors = Vec::new();
    if let Some(v) = doc.format_version {
        if v != 1 {
            errors.push(DocError::new("format_version", "version", format!("format_version {v} is not known to this build (1)")));
        }
    }
    let mut channels = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (i, c) in doc.channels.iter().enumerate() {
        let at = format!("channels[{i}]");
        if !seen.insert(c.id.as_str()) {
            errors.push(DocError::new(format!("{at}.id"), "duplicate", format!("channel id '{}' is used twice", c.id)));
            continue;
        }
        if let Some(channel) = compile_channel(c, &at, secret, &mut errors) {
            channels.insert(channel.id.clone(), channel);
        }
    }
    let mut routes = Vec::new();
    for (i, r) in doc.routes.iter().enumerate() {
        let at = format!("routes[{i}]");
        if let Some(route) = compile_route(r, &at, &channels, &mut errors) {
            routes.push(route);
        }
    }
    if errors.is_empty() {
        Ok(Config { channels, routes })
    } else {
        Err(errors)
    }
}

fn tenant(raw: &str, at: &str, errors: &mut Vec<DocError>) -> Option<String> {
    match TenantId::parse(raw) {
        Ok(t) => Some(t.to_string()),
        Err(e) => {
            errors.push(DocError::from_validation(format!("{at}.tenant"), e));
            None
        }
    }
}

/// The value of the environment variable `name` names (refused when unset or empty).
fn from_env(name: &str, at: String, secret: &dyn Fn(&str) -> Option<String>, errors: &mut Vec<DocError>) -> Option<String> {
    match secret(name) {
        Some(v) if !v.is_empty() => Some(v),
        _ => {
            errors.push(DocError::new(at, "required", format!("environment variable {name} is not set (or empty)")));
            None
        }
    }
}

fn compile_channel(c: &ChannelDoc, at: &str, secret: &dyn Fn(&str) -> Option<String>, errors: &mut Vec<DocError>) -> Option<Channel> {
    let before = errors.len();
    let id_ok = !c.id.is_empty() && c.id.len() <= 64 && c.id.chars().all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
    if !id_ok {
        errors.push(DocError::new(format!("{at}.id"), "charset", "a channel id is 1-64 of A-Z, a-z, 0-9, '-', '_', '.'"));
    }
    let tenant = tenant(&c.tenant, at, errors);
    let misplaced = |field: &str, present: bool, errors: &mut Vec<DocError>| {
        if present {
            errors.push(DocError::new(format!("{at}.{field}"), "unknown_field", format!("a {} channel has no {field}", c.kind)));
        }
    };
    let url = |errors: &mut Vec<DocError>| -> Option<Url> {
        let (raw, path) = match (&c.url, &c.url_env) {
            (Some(u), None) => (u.clone(), format!("{at}.url")),
            (None, Some(name)) => (from_env(name, format!("{at}.url_env"), secret, errors)?, format!("{at}.url_env")),
            (Some(_), Some(_)) => {
                errors.push(DocError::new(format!("{at}.url"), "one_of", "give url or url_env, not both"));
                return None;
            }
            (None, None) => {
                errors.push(DocError::new(format!("{at}.url"), "required", format!("a {} channel needs url (or url_env)", c.kind)));
                return None;
            }
        };
        match Url::parse(&raw) {
            Ok(u) if u.scheme() == "http" => Some(u),
            Ok(u) if u.scheme() == "https" => {
                errors.push(DocError::new(
                    path,
                    "scheme",
                    "https needs TLS, which this build does not include: use an http:// endpoint (such as a local TLS-terminating relay); see docs/herald.md",
                ));
                None
            }
            Ok(u) => {
                errors.push(DocError::new(path, "scheme", format!("'{}' URLs cannot be posted to: use http://", u.scheme())));
                None
            }
            // The URL may be a secret: the message does not repeat it.
            Err(e) => {
                errors.push(DocError::new(path, "url", format!("not a URL: {e}")));
                None
            }
        }
    };
    let target = match c.kind.as_str() {
        "webhook" | "slack" => {
            for (field, present) in [("smtp", c.smtp.is_some()), ("from", c.from.is_some()), ("to", c.to.is_some())] {
                misplaced(field, present, errors);
            }
            let url = url(errors);
            if c.kind == "webhook" {
                let secret = match &c.secret_env {
                    Some(name) => from_env(name, format!("{at}.secret_env"), secret, errors),
                    None => {
                        errors.push(DocError::new(format!("{at}.secret_env"), "required", "a webhook channel needs secret_env: the variable holding its signing secret"));
                        None
                    }
                };
                Target::Webhook { url: url?, secret: secret? }
            } else {
                misplaced("secret_env", c.secret_env.is_some(), errors);
                Target::Slack { url: url? }
            }
        }
        "email" => {
            for (field, present) in [("url", c.url.is_some()), ("url_env", c.url_env.is_some()), ("secret_env", c.secret_env.is_some())] {
                misplaced(field, present, errors);
            }
            let Some(smtp) = &c.smtp else {
                errors.push(DocError::new(format!("{at}.smtp"), "required", "an email channel needs smtp: {host, port}"));
                return None;
            };
            if smtp.host.trim().is_empty() {
                errors.push(DocError::new(format!("{at}.smtp.host"), "required", "the SMTP host is empty"));
            }
            let credentials = match (&smtp.username, &smtp.password_env) {
                (Some(user), Some(name)) => from_env(name, format!("{at}.smtp.password_env"), secret, errors).map(|p| Some((user.clone(), p))),
                (None, None) => Some(None),
                _ => {
                    errors.push(DocError::new(format!("{at}.smtp"), "required", "give both username and password_env, or neither"));
                    None
                }
            };
            let mailbox = |raw: &str, path: String, errors: &mut Vec<DocError>| match raw.parse::<Mailbox>() {
                Ok(m) => Some(m),
                Err(e) => {
                    errors.push(DocError::new(path, "email", format!("'{raw}' is not an email address: {e}")));
                    None
                }
            };
            let from = match &c.from {
                Some(f) => mailbox(f, format!("{at}.from"), errors),
                None => {
                    errors.push(DocError::new(format!("{at}.from"), "required", "an email channel needs from"));
                    None
                }
            };
            let to: Vec<Option<Mailbox>> = match &c.to {
                Some(list) if !list.is_empty() => list.iter().enumerate().map(|(j, t)| mailbox(t, format!("{at}.to[{j}]"), errors)).collect(),
                _ => {
                    errors.push(DocError::new(format!("{at}.to"), "required", "an email channel needs at least one address in to"));
                    vec![None]
                }
            };
            let to: Option<Vec<Mailbox>> = to.into_iter().collect();
            Target::Email { host: smtp.host.trim().to_owned(), port: smtp.port, credentials: credentials?, from: from?, to: to? }
        }
        other => {
            errors.push(DocError::new(format!("{at}.kind"), "one_of", format!("unknown channel kind '{other}': webhook, slack or email")));
            return None;
        }
    };
    (errors.len() == before).then(|| Channel { id: c.id.clone(), tenant: tenant.expect("checked"), target })
}

fn compile_route(r: &RouteDoc, at: &str, channels: &BTreeMap<String, Channel>, errors: &mut Vec<DocError>) -> Option<Route> {
    let before = errors.len();
    let tenant = tenant(&r.tenant, at, errors);
    let mut severities = BTreeSet::new();
    for (j, s) in r.matches.severities.iter().enumerate() {
        match Severity::parse(s) {
            Some(s) => {
                severities.insert(s);
            }
            None => errors.push(DocError::new(format!("{at}.match.severities[{j}]"), "one_of", format!("unknown severity '{s}': critical, high, medium or low"))),
        }
    }
    let mut transitions = BTreeSet::new();
    for (j, t) in r.matches.transitions.iter().enumerate() {
        match Alertable::parse(t) {
            Some(t) => {
                transitions.insert(t);
            }
            None => errors.push(DocError::new(
                format!("{at}.match.transitions[{j}]"),
                "one_of",
                format!("unknown transition '{t}': due, escalated or resolved (pending violations are never alerted)"),
            )),
        }
    }
    if r.matches.transitions.is_empty() {
        transitions.extend([Alertable::Due, Alertable::Escalated]);
    }
    if r.channels.is_empty() {
        errors.push(DocError::new(format!("{at}.channels"), "required", "a route needs at least one channel"));
    }
    let mut email = false;
    for (j, id) in r.channels.iter().enumerate() {
        match channels.get(id) {
            None => errors.push(DocError::new(format!("{at}.channels[{j}]"), "not_found", format!("no channel '{id}' (or it is invalid)"))),
            Some(c) => {
                email |= matches!(c.target, Target::Email { .. });
                if tenant.as_deref().is_some_and(|t| t != c.tenant) {
                    errors.push(DocError::new(
                        format!("{at}.channels[{j}]"),
                        "mismatch",
                        format!("channel '{id}' belongs to tenant '{}': a tenant's alerts only go to its own channels", c.tenant),
                    ));
                }
            }
        }
    }
    if r.to_escalation_contact && !email && !r.channels.is_empty() {
        errors.push(DocError::new(format!("{at}.to_escalation_contact"), "mismatch", "the escalation contact is an email address: the route needs an email channel"));
    }
    (errors.len() == before).then(|| Route {
        name: r.name.clone().unwrap_or_else(|| at.to_owned()),
        tenant: tenant.expect("checked"),
        severities,
        policies: r.matches.policies.iter().cloned().collect(),
        teams: r.matches.teams.iter().map(|t| t.to_ascii_lowercase()).collect(),
        transitions,
        channels: r.channels.clone(),
        to_escalation_contact: r.to_escalation_contact,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
channels:
  - {id: hook, tenant: acme, kind: webhook, url: "http://127.0.0.1:9000/hook", secret_env: HOOK_SECRET}
  - {id: chat, tenant: acme, kind: slack, url_env: SLACK_URL}
  - id: mail
    tenant: acme
    kind: email
    smtp: {host: 127.0.0.1, port: 2525}
    from: vtag@acme.test
    to: [governance@acme.test]
  - {id: other, tenant: globex, kind: webhook, url: "http://127.0.0.1:9000/globex", secret_env: HOOK_SECRET}
routes:
  - name: urgent
    tenant: acme
    match: {severities: [critical, high]}
    channels: [hook]
  - tenant: acme
    match: {teams: [Payments], transitions: [due, resolved]}
    channels: [chat, hook]
  - tenant: acme
    match: {policies: [prod], transitions: [escalated]}
    channels: [mail]
    to_escalation_contact: true
  - tenant: globex
    channels: [other]
"#;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOOK_SECRET" => Some("s3cret".into()),
            "SLACK_URL" => Some("http://127.0.0.1:9000/slack".into()),
            _ => None,
        }
    }

    fn facts<'a>(severity: Severity, policy: &'a str, team: Option<&'a str>, transition: Alertable) -> Facts<'a> {
        Facts { tenant: "acme", severity: Some(severity), policy_id: policy, team, transition }
    }

    fn channels(c: &Config, f: &Facts<'_>) -> Vec<String> {
        c.route(f).into_iter().map(|r| if r.escalation_contact { format!("{}+contact", r.channel) } else { r.channel }).collect()
    }

    #[test]
    fn routes_match_on_severity_policy_team_and_transition() {
        let c = Config::parse(CONFIG, false, env).unwrap();
        assert_eq!(c.channels.len(), 4);
        assert_eq!(c.routes[0].name, "urgent");
        assert_eq!(c.routes[1].name, "routes[1]");
        // high: the urgent route; no team, so not the team route.
        assert_eq!(channels(&c, &facts(Severity::High, "owner", None, Alertable::Due)), ["hook"]);
        // low: only a route without a severity filter can take it.
        assert!(channels(&c, &facts(Severity::Low, "owner", None, Alertable::Due)).is_empty());
        // the team route (teams compared without case); hook once although two routes name it.
        assert_eq!(channels(&c, &facts(Severity::High, "owner", Some("payments"), Alertable::Due)), ["chat", "hook"]);
        assert_eq!(channels(&c, &facts(Severity::Low, "owner", Some("PAYMENTS"), Alertable::Due)), ["chat", "hook"]);
        // resolved only where a route asks for it; escalated by default.
        assert_eq!(channels(&c, &facts(Severity::Critical, "owner", None, Alertable::Resolved)), Vec::<String>::new());
        assert_eq!(channels(&c, &facts(Severity::Low, "owner", Some("payments"), Alertable::Resolved)), ["chat", "hook"]);
        assert_eq!(channels(&c, &facts(Severity::Critical, "owner", None, Alertable::Escalated)), ["hook"]);
        // the escalation contact on the mail route's escalations only.
        assert_eq!(channels(&c, &facts(Severity::Low, "prod", None, Alertable::Escalated)), ["mail+contact"]);
        assert!(channels(&c, &facts(Severity::Low, "prod", None, Alertable::Due)).is_empty());
        // unknown severity (opening not seen): only routes without a severity filter.
        let unknown = Facts { severity: None, ..facts(Severity::High, "owner", Some("payments"), Alertable::Due) };
        assert_eq!(channels(&c, &unknown), ["chat", "hook"]);
        // another tenant's violations only reach its own channels.
        let globex = Facts { tenant: "globex", ..facts(Severity::High, "owner", Some("payments"), Alertable::Due) };
        assert_eq!(channels(&c, &globex), ["other"]);
        let nobody = Facts { tenant: "initech", ..facts(Severity::High, "owner", None, Alertable::Due) };
        assert!(channels(&c, &nobody).is_empty());
    }

    #[test]
    fn json_reads_like_yaml() {
        let json = r#"{"channels": [{"id": "hook", "tenant": "acme", "kind": "webhook", "url": "http://h/x", "secret_env": "HOOK_SECRET"}],
                       "routes": [{"tenant": "acme", "channels": ["hook"]}]}"#;
        let c = Config::parse(json, true, env).unwrap();
        assert_eq!(c.routes[0].transitions, BTreeSet::from([Alertable::Due, Alertable::Escalated]));
        let Target::Webhook { secret, .. } = &c.channels["hook"].target else { panic!() };
        assert_eq!(secret, "s3cret");
        assert!(!format!("{:?}", c.channels["hook"]).contains("s3cret"), "secrets stay out of Debug");
    }

    fn errors(text: &str) -> Vec<String> {
        Config::parse(text, false, env).unwrap_err().iter().map(|e| format!("{} [{}]", e, e.rule)).collect()
    }

    #[test]
    fn mistakes_are_reported_with_path_rule_and_line() {
        let text = r#"
channels:
  - {id: hook, tenant: acme, kind: webhook, url: "https://example.com/x", secret_env: MISSING}
  - {id: hook, tenant: acme, kind: slack, url: "http://h/s"}
  - {id: fax, tenant: acme, kind: fax}
  - {id: mail, tenant: acme, kind: email, smtp: {host: h}, from: "not an address", to: []}
  - {id: "bad id", tenant: "a b", kind: slack, url: "http://h/s", secret_env: X}
  - {id: chat, tenant: acme, kind: slack, url: "http://h/s"}
routes:
  - tenant: acme
    match: {severities: [urgent], transitions: [opened]}
    channels: [nowhere]
    to_escalation_contact: true
  - tenant: globex
    channels: [chat]
"#;
        let got = errors(text);
        let expected = [
            "channels[0].url: https needs TLS, which this build does not include: use an http:// endpoint (such as a local TLS-terminating relay); see docs/herald.md (line 3, column 50) [scheme]",
            "channels[0].secret_env: environment variable MISSING is not set (or empty) (line 3, column 87) [required]",
            "channels[1].id: channel id 'hook' is used twice (line 4, column 10) [duplicate]",
            "channels[2].kind: unknown channel kind 'fax': webhook, slack or email (line 5, column 35) [one_of]",
            "channels[3].from: 'not an address' is not an email address: Invalid input (line 6, column 66) [email]",
            "channels[3].to: an email channel needs at least one address in to (line 6, column 88) [required]",
        ];
        assert_eq!(&got[..expected.len()], expected, "{got:#?}");
        let rest = got[expected.len()..].join("\n");
        for part in [
            "channels[4].id: a channel id is 1-64",
            "channels[4].tenant: tenant may contain only",
            "channels[4].secret_env: a slack channel has no secret_env",
            "routes[0].match.severities[0]: unknown severity 'urgent'",
            "routes[0].match.transitions[0]: unknown transition 'opened'",
            "routes[0].channels[0]: no channel 'nowhere'",
            "routes[0].to_escalation_contact: the escalation contact is an email address",
            "routes[1].channels[0]: channel 'chat' belongs to tenant 'acme': a tenant's alerts only go to its own channels (line 15, column 16)",
        ] {
            assert!(rest.contains(part), "missing {part:?} in\n{rest}");
        }
        assert!(errors("channels: [{id: x, tenant: acme, kind: slack, url: http://h, colour: red}]")[0].contains("unknown field `colour`"));
        assert!(errors("format_version: 2")[0].starts_with("format_version: format_version 2 is not known"));
        assert!(errors("routes: [{tenant: acme, channels: []}]")[0].starts_with("routes[0].channels: a route needs at least one channel"));
    }

    #[test]
    fn a_bad_file_is_named_in_the_error() {
        let dir = std::env::temp_dir().join(format!("vtag-herald-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("herald.yaml");
        std::fs::write(&path, "routes: [{tenant: acme, channels: [ghost]}]\n").unwrap();
        let e = Config::load(&path, env).unwrap_err().to_string();
        assert!(e.starts_with(&format!("the herald configuration {} is invalid:\n  - routes[0].channels[0]: no channel 'ghost'", path.display())), "{e}");
        let missing = dir.join("nope.yaml");
        let e = Config::load(&missing, env).unwrap_err().to_string();
        assert!(e.starts_with(&format!("cannot read the herald configuration {}", missing.display())), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
