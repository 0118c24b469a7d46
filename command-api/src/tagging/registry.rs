//! The current tagging configuration of every tenant, as this instance knows it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio::sync::watch;
use vtag_domain::tagging::TaggingConfig;
use vtag_domain::{Actor, TenantId};
use vtag_eventlog::ConfigRecord;
use vtag_tagging_config::ConfigDocument;

/// One tenant's configuration at one version: the document (what people wrote) and its compiled
/// form (what derivation runs).
#[derive(Debug)]
pub struct TenantConfig {
    pub version: u64,
    pub document: ConfigDocument,
    pub compiled: TaggingConfig,
    /// Who published this version (re-derivation events carry it as their actor).
    pub actor: Option<Actor>,
    /// The command that published it (re-derivation events are caused by it).
    pub causation_id: Option<uuid::Uuid>,
}

impl TenantConfig {
    pub fn initial() -> Self {
        let document = ConfigDocument::initial();
        let compiled = document.compile(0).expect("the initial document compiles");
        Self { version: 0, document, compiled, actor: None, causation_id: None }
    }
}

pub struct ConfigRegistry {
    tenants: RwLock<HashMap<TenantId, Arc<TenantConfig>>>,
    initial: Arc<TenantConfig>,
    /// Bumped on every change: the re-derivation runner waits on it.
    changed: watch::Sender<u64>,
}

impl Default for ConfigRegistry {
    fn default() -> Self {
        Self { tenants: RwLock::default(), initial: Arc::new(TenantConfig::initial()), changed: watch::channel(0).0 }
    }
}

impl ConfigRegistry {
    pub fn get(&self, tenant: &TenantId) -> Arc<TenantConfig> {
        self.tenants.read().expect("registry lock").get(tenant).cloned().unwrap_or_else(|| self.initial.clone())
    }

    /// Tenants with a published configuration, and their versions.
    pub fn versions(&self) -> Vec<(TenantId, u64)> {
        self.tenants.read().expect("registry lock").iter().map(|(t, c)| (t.clone(), c.version)).collect()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Takes a record read from (or just written to) the log. Only the next version is news: the
    /// writer installs its own changes before the tail reads them back.
    pub fn install(&self, record: &ConfigRecord) -> Result<bool, String> {
        let current = self.get(&record.tenant).version;
        if record.version != current + 1 {
            return Ok(false);
        }
        let document = ConfigDocument::from_json(record.document.as_bytes())
            .map_err(|e| format!("configuration v{} of {}: {e:?}", record.version, record.tenant))?;
        let compiled = document
            .compile(record.version)
            .map_err(|e| format!("configuration v{} of {}: {e:?}", record.version, record.tenant))?;
        self.install_compiled(record, document, compiled);
        Ok(true)
    }

    /// Installs a change this instance just decided and wrote: the writer already holds the
    /// document and its compiled form, so nothing is parsed or compiled again.
    pub fn install_compiled(&self, record: &ConfigRecord, document: ConfigDocument, compiled: TaggingConfig) {
        let config = TenantConfig {
            version: record.version,
            document,
            compiled,
            actor: Some(record.actor.clone()),
            causation_id: Some(record.causation_id),
        };
        self.tenants.write().expect("registry lock").insert(record.tenant.clone(), Arc::new(config));
        self.changed.send_modify(|n| *n += 1);
    }
}
