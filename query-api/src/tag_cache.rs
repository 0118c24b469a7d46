//! The resources carrying each value of a tag key, held between allocation queries. Fetching every
//! resource's tag is most of what an allocation costs, and the answer only changes when the
//! resource projection moves on: a map is kept under the projection's checkpoint (the sum of its
//! next offsets on the resource topic), which the projector writes in the same transaction as the
//! tags. The checkpoint is read before the tags, so a map is never older than the checkpoint it is
//! kept under, and checkpoints only grow: an unchanged checkpoint means unchanged tags.
//!
//! Tags as they were at a past time (`as_of`) are read from the audit trail each time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::PgPool;
use uuid::Uuid;
use vtag_domain::TenantId;
use vtag_service::Problem;

use crate::allocation::tag_values;
use crate::consistency::PROJECTOR;
use crate::state::db_error;

/// Maps looked up once per resource of a query: a fast hash (keys are vtag's own ids).
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Maps kept (tenant × key); each holds a 16-byte id and a 4-byte value index per tagged resource.
const MAX_MAPS: usize = 32;

/// The values of one key and which resource carries which.
#[derive(Debug, Default)]
pub struct TagMap {
    pub values: Vec<String>,
    /// Index into `values`.
    pub value_of: FastMap<Uuid, u32>,
}

impl TagMap {
    pub(crate) fn new(groups: Vec<(String, Vec<Uuid>)>) -> Self {
        let mut map = TagMap::default();
        map.value_of.reserve(groups.iter().map(|(_, ids)| ids.len()).sum());
        for (value, ids) in groups {
            let v = map.values.len() as u32;
            map.values.push(value);
            map.value_of.extend(ids.into_iter().map(|r| (r, v)));
        }
        map
    }
}

/// Per tenant and key: the checkpoint a map was fetched at, and the map.
type Maps = HashMap<(TenantId, String), (i64, Arc<TagMap>)>;

pub struct TagCache {
    /// The resource topic, whose checkpoint versions the maps.
    topic: String,
    maps: Mutex<Maps>,
}

impl TagCache {
    pub fn new(topic: String) -> Self {
        Self { topic, maps: Mutex::default() }
    }

    /// The tenant's current map for `key`, fetched only when the projection has moved on.
    pub async fn current(&self, pool: &PgPool, tenant: &TenantId, key: &str) -> Result<Arc<TagMap>, Problem> {
        let version: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(next_offset), 0)::int8 FROM projector_checkpoints WHERE projector = $1 AND topic = $2",
        )
        .bind(PROJECTOR)
        .bind(&self.topic)
        .fetch_one(pool)
        .await
        .map_err(db_error)?;
        let slot = (tenant.clone(), key.to_owned());
        if let Some((v, map)) = self.maps.lock().expect("tag cache lock").get(&slot) {
            if *v == version {
                return Ok(map.clone());
            }
        }
        let started = std::time::Instant::now();
        let map = Arc::new(TagMap::new(tag_values(pool, tenant, key, None).await?));
        tracing::debug!(%tenant, key, version, resources = map.value_of.len(), ms = started.elapsed().as_secs_f64() * 1000.0, "tag map fetched");
        let mut maps = self.maps.lock().expect("tag cache lock");
        // Older versions are of no further use; past the bound, any map may go.
        maps.retain(|_, (v, _)| *v >= version);
        if maps.len() >= MAX_MAPS {
            if let Some(any) = maps.keys().next().cloned() {
                maps.remove(&any);
            }
        }
        maps.insert(slot, (version, map.clone()));
        Ok(map)
    }
}
