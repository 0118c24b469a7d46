//! Committed cost imports held in memory. An import never changes once committed (a correction is
//! a new import), so a cached import is never stale: a query only has to learn which imports are
//! in force (one small query) and fold their rows. Folding 100k resources × 30 days in memory takes
//! milliseconds, where joining three million daily rows in Postgres took seconds.
//!
//! Bounded by rows held (least recently used imports are dropped first).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use sqlx::PgPool;
use tokio::sync::OnceCell;
use uuid::Uuid;
use vtag_service::Problem;

use crate::state::db_error;
use crate::tag_cache::TagCache;

pub const MONTH_DAYS: usize = 31;

/// One resource's month of one service and charge category in an import.
#[derive(Debug, Clone)]
pub struct MonthRow {
    pub resource_id: Uuid,
    /// Index into [`ImportCosts::resources`].
    pub resource: u32,
    pub month: NaiveDate,
    /// Index into [`ImportCosts::services`].
    pub service: u16,
    pub category: u8,
    /// 10⁻¹⁰ units per day of the month (day 1 first).
    pub billed: [i64; MONTH_DAYS],
    pub effective: [i64; MONTH_DAYS],
}

#[derive(Debug, Default)]
pub struct ImportCosts {
    pub services: Vec<String>,
    pub categories: Vec<String>,
    /// The import's resources, each once: queries look each one's tag up once, not per row.
    pub resources: Vec<Uuid>,
    /// Grouped by resource (in `resources` order).
    pub rows: Vec<MonthRow>,
}

impl ImportCosts {
    fn intern(names: &mut Vec<String>, name: &str) -> usize {
        names.iter().position(|n| n == name).unwrap_or_else(|| {
            names.push(name.to_owned());
            names.len() - 1
        })
    }
}

pub struct CostCache {
    max_rows: usize,
    entries: Mutex<Entries>,
    /// The tag maps allocations group by.
    pub tags: TagCache,
}

#[derive(Default)]
struct Entries {
    imports: HashMap<Uuid, Arc<OnceCell<Arc<ImportCosts>>>>,
    /// Least recently used first.
    order: Vec<Uuid>,
}

impl CostCache {
    /// `topic`: the resource topic, whose projection checkpoint versions the tag maps.
    pub fn new(max_rows: usize, topic: String) -> Self {
        Self { max_rows, entries: Mutex::default(), tags: TagCache::new(topic) }
    }

    /// The import's rows, loaded once however many queries ask at the same time.
    pub async fn get(&self, pool: &PgPool, tenant: &str, import_id: Uuid) -> Result<Arc<ImportCosts>, Problem> {
        let cell = {
            let mut e = self.entries.lock().expect("cost cache lock");
            let cell = e.imports.entry(import_id).or_default().clone();
            e.order.retain(|i| *i != import_id);
            e.order.push(import_id);
            cell
        };
        let costs = cell.get_or_try_init(|| load(pool, tenant, import_id)).await?.clone();
        self.evict();
        Ok(costs)
    }

    fn evict(&self) {
        let mut e = self.entries.lock().expect("cost cache lock");
        let held = |e: &Entries| e.imports.values().filter_map(|c| c.get()).map(|c| c.rows.len()).sum::<usize>();
        // Keep at least the most recent import, however large.
        while e.order.len() > 1 && held(&e) > self.max_rows {
            let oldest = e.order.remove(0);
            e.imports.remove(&oldest);
        }
    }
}

fn unpack(bytes: &[u8]) -> [i64; MONTH_DAYS] {
    let mut days = [0i64; MONTH_DAYS];
    for (slot, chunk) in days.iter_mut().zip(bytes.chunks_exact(8)) {
        *slot = i64::from_le_bytes(chunk.try_into().expect("8 bytes"));
    }
    days
}

async fn load(pool: &PgPool, tenant: &str, import_id: Uuid) -> Result<Arc<ImportCosts>, Problem> {
    use futures::TryStreamExt;
    let started = std::time::Instant::now();
    let mut costs = ImportCosts::default();
    let mut rows = sqlx::query_as::<_, (Uuid, NaiveDate, String, String, Vec<u8>, Vec<u8>)>(
        "SELECT resource_id, month, service_name, charge_category, billed, effective
           FROM resource_cost_months WHERE tenant = $1 AND import_id = $2",
    )
    .bind(tenant)
    .bind(import_id)
    .fetch(pool);
    while let Some((resource_id, month, service, category, billed, effective)) = rows.try_next().await.map_err(db_error)? {
        let service = ImportCosts::intern(&mut costs.services, &service) as u16;
        let category = ImportCosts::intern(&mut costs.categories, &category) as u8;
        costs.rows.push(MonthRow { resource_id, resource: 0, month, service, category, billed: unpack(&billed), effective: unpack(&effective) });
    }
    costs.rows.sort_unstable_by_key(|r| r.resource_id);
    for row in &mut costs.rows {
        if costs.resources.last() != Some(&row.resource_id) {
            costs.resources.push(row.resource_id);
        }
        row.resource = costs.resources.len() as u32 - 1;
    }
    tracing::debug!(%import_id, rows = costs.rows.len(), ms = started.elapsed().as_millis() as u64, "cost import loaded");
    Ok(Arc::new(costs))
}
