//! Projects the cost topic into `cost_imports`, `resource_cost_months`, `pool_costs` and
//! `cost_split_configs`.
//!
//! A chunk's lines are written as they come (each chunk holds all of its resources' lines, so it
//! folds into whole month rows on its own); they are invisible until the import's commit adds its
//! `cost_imports` row, which also marks the ledger's previous import superseded. Every record is
//! one transaction with the checkpoint; re-delivered records change nothing (keys include the
//! import, inserts do nothing on conflict).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use chrono::{Datelike, NaiveDate};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;
use vtag_billing::{Amount, CostEvent, CostLinesRecorded, CostPeriodImported, CostRecord, CostSplitsChanged, ResourceCost};
use vtag_eventlog::EventCodec;

use crate::dead_letter::DeadLetters;
use crate::source::BatchSource;
use super::swap::Target;

/// Days of a month row: 31 slots of 8 bytes.
pub const MONTH_DAYS: usize = 31;

pub struct CostProjection {
    target: Target,
    projector: String,
    codec: EventCodec,
    source: BatchSource,
    dead_letters: DeadLetters,
}

impl CostProjection {
    pub async fn start(target: Target, projector: &str, brokers: &str, codec: EventCodec, dead_letters: DeadLetters) -> anyhow::Result<Self> {
        let source = super::configs::single_partition_source(target.pool(), projector, brokers, "vtag-projector-postgres-costs", codec.topic()).await?;
        Ok(Self { target, projector: projector.to_owned(), codec, source, dead_letters })
    }

    /// Runs until the process ends (dropping the future mid-record commits nothing of it).
    pub async fn run(self) -> anyhow::Result<()> {
        loop {
            for record in self.source.next_batch(50, Duration::from_millis(50)).await? {
                let event = match super::decode_with_retry(|| self.codec.decode_cost(&record.payload)).await {
                    Ok(e) => Some(e),
                    Err(reason) => {
                        tracing::error!(offset = record.offset, %reason, "dead-lettering a cost record");
                        self.dead_letters.park(&record, &reason).await.context("writing to the dead-letter topic")?;
                        None
                    }
                };
                super::write_with_retry(|| self.write(event.as_ref(), record.offset + 1))
                    .await
                    .with_context(|| format!("cost record at offset {}", record.offset))?;
            }
        }
    }

    async fn write(&self, event: Option<&CostRecord>, next_offset: i64) -> Result<(), sqlx::Error> {
        let mut tx = self.target.begin().await?;
        match event {
            Some(CostRecord::Ledger(CostEvent::Lines(lines))) => write_lines(&mut tx, lines).await?,
            Some(CostRecord::Ledger(CostEvent::Imported(commit))) => write_commit(&mut tx, commit).await?,
            Some(CostRecord::Splits(splits)) => write_splits(&mut tx, splits).await?,
            None => {}
        }
        super::configs::save_checkpoint(&mut tx, &self.projector, self.codec.topic(), next_offset).await?;
        tx.commit().await
    }
}

type MonthKey<'a> = (Uuid, NaiveDate, &'a str, &'static str);

/// Month rows of one chunk: day slots of billed, effective and list cost.
pub fn month_rows(lines: &[ResourceCost]) -> BTreeMap<MonthKey<'_>, [[i64; MONTH_DAYS]; 3]> {
    let mut rows: BTreeMap<MonthKey<'_>, [[i64; MONTH_DAYS]; 3]> = BTreeMap::new();
    for l in lines {
        let month = l.day.with_day(1).expect("day 1 exists");
        let slot = l.day.day0() as usize;
        let row = rows.entry((l.resource_id.as_uuid(), month, &*l.service, l.category.as_str())).or_insert([[0; MONTH_DAYS]; 3]);
        // Each line is one (resource, day, category, service) and within the 64-bit bound
        // (checked when the file was read), so a slot is written once.
        for (i, amount) in [l.costs.billed, l.costs.effective, l.costs.list].into_iter().enumerate() {
            row[i][slot] = i64::try_from(amount.units()).unwrap_or(if amount.units() < 0 { i64::MIN } else { i64::MAX });
        }
    }
    rows
}

pub fn pack(days: &[i64; MONTH_DAYS]) -> Vec<u8> {
    days.iter().flat_map(|d| d.to_le_bytes()).collect()
}

async fn write_lines(tx: &mut Transaction<'_, Postgres>, e: &CostLinesRecorded) -> Result<(), sqlx::Error> {
    let tenant = e.envelope.tenant.as_str();
    let import = e.envelope.import_id;
    let days = e.resource_lines.iter().map(|l| l.day).chain(e.pool_lines.iter().map(|l| l.day));
    let (first, last) = (days.clone().min(), days.max());
    sqlx::query(
        "INSERT INTO cost_import_chunks (tenant, import_id, chunk, first_day, last_day) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(import)
    .bind(e.chunk as i32)
    .bind(first)
    .bind(last)
    .execute(&mut **tx)
    .await?;
    let rows = month_rows(&e.resource_lines);
    if !rows.is_empty() {
        let mut resources = Vec::with_capacity(rows.len());
        let mut months = Vec::with_capacity(rows.len());
        let mut services = Vec::with_capacity(rows.len());
        let mut categories = Vec::with_capacity(rows.len());
        let (mut billed, mut effective, mut list) = (Vec::new(), Vec::new(), Vec::new());
        for ((resource, month, service, category), days) in &rows {
            resources.push(*resource);
            months.push(*month);
            services.push(*service);
            categories.push(*category);
            billed.push(pack(&days[0]));
            effective.push(pack(&days[1]));
            list.push(pack(&days[2]));
        }
        sqlx::query(
            "INSERT INTO resource_cost_months (tenant, import_id, resource_id, month, service_name, charge_category, billed, effective, list)
             SELECT $1, $2, * FROM UNNEST($3::uuid[], $4::date[], $5::text[], $6::text[], $7::bytea[], $8::bytea[], $9::bytea[])
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(import)
        .bind(&resources)
        .bind(&months)
        .bind(&services)
        .bind(&categories)
        .bind(&billed)
        .bind(&effective)
        .bind(&list)
        .execute(&mut **tx)
        .await?;
    }
    if !e.pool_lines.is_empty() {
        let days: Vec<NaiveDate> = e.pool_lines.iter().map(|l| l.day).collect();
        let categories: Vec<&str> = e.pool_lines.iter().map(|l| l.category.as_str()).collect();
        let services: Vec<&str> = e.pool_lines.iter().map(|l| l.service.as_str()).collect();
        let accounts: Vec<&str> = e.pool_lines.iter().map(|l| l.sub_account.as_str()).collect();
        let reasons: Vec<&str> = e.pool_lines.iter().map(|l| l.reason).collect();
        let text = |f: fn(&vtag_billing::PoolLine) -> Amount| e.pool_lines.iter().map(|l| f(l).to_string()).collect::<Vec<_>>();
        sqlx::query(
            "INSERT INTO pool_costs (tenant, import_id, day, charge_category, service_name, sub_account_id, reason, billed_cost, effective_cost, list_cost)
             SELECT $1, $2, d, c, s, a, r, b::numeric, e::numeric, l::numeric
               FROM UNNEST($3::date[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[]) AS u(d, c, s, a, r, b, e, l)
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(import)
        .bind(&days)
        .bind(&categories)
        .bind(&services)
        .bind(&accounts)
        .bind(&reasons)
        .bind(text(|l| l.costs.billed))
        .bind(text(|l| l.costs.effective))
        .bind(text(|l| l.costs.list))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn write_splits(tx: &mut Transaction<'_, Postgres>, e: &CostSplitsChanged) -> Result<(), sqlx::Error> {
    let document: serde_json::Value = serde_json::from_str(&e.document).unwrap_or(serde_json::Value::Null);
    sqlx::query(
        "INSERT INTO cost_split_configs (tenant, version, document, actor, event_id, recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, version) DO NOTHING",
    )
    .bind(e.tenant.as_str())
    .bind(e.version as i64)
    .bind(document)
    .bind(e.actor.as_str())
    .bind(e.event_id)
    .bind(e.recorded_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn write_commit(tx: &mut Transaction<'_, Postgres>, e: &CostPeriodImported) -> Result<(), sqlx::Error> {
    let env = &e.envelope;
    let (received, first_day, last_day): (i64, Option<NaiveDate>, Option<NaiveDate>) = sqlx::query_as(
        "SELECT count(*), min(first_day), max(last_day) FROM cost_import_chunks WHERE tenant = $1 AND import_id = $2",
    )
    .bind(env.tenant.as_str())
    .bind(env.import_id)
    .fetch_one(&mut **tx)
    .await?;
    if received != i64::from(e.chunks) {
        // A chunk was lost (dead-lettered): the import stays invisible and the ledger keeps its
        // previous import, rather than showing part of a bill.
        tracing::error!(import = %env.import_id, received, expected = e.chunks, "cost import incomplete; not made visible");
        return Ok(());
    }
    let inserted = sqlx::query(
        "INSERT INTO cost_imports (tenant, import_id, ledger_id, version, provider_name, billing_account_id, billing_account_name,
                                   period_start, period_end, currency, fingerprint, source, rows, chunks, resource_lines, pool_lines,
                                   resources, billed_cost, effective_cost, list_cost, unallocatable_billed_cost,
                                   unallocatable_effective_cost, unallocatable_list_cost, replaces, imported_by, imported_at,
                                   first_day, last_day)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18::numeric, $19::numeric, $20::numeric,
                 $21::numeric, $22::numeric, $23::numeric, $24, $25, $26, $27, $28)
         ON CONFLICT DO NOTHING",
    )
    .bind(env.tenant.as_str())
    .bind(env.import_id)
    .bind(env.ledger_id)
    .bind(env.version as i64)
    .bind(&e.provider_name)
    .bind(&e.billing_account_id)
    .bind(&e.billing_account_name)
    .bind(e.period_start)
    .bind(e.period_end)
    .bind(&e.currency)
    .bind(&e.fingerprint)
    .bind(&e.source)
    .bind(e.rows as i64)
    .bind(e.chunks as i32)
    .bind(e.resource_lines as i64)
    .bind(e.pool_lines as i64)
    .bind(e.resources as i64)
    .bind(e.total.billed.to_string())
    .bind(e.total.effective.to_string())
    .bind(e.total.list.to_string())
    .bind(e.unallocatable.billed.to_string())
    .bind(e.unallocatable.effective.to_string())
    .bind(e.unallocatable.list.to_string())
    .bind(e.replaces)
    .bind(env.actor.as_str())
    .bind(env.recorded_at)
    .bind(first_day)
    .bind(last_day)
    .execute(&mut **tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(());
    }
    // Every other import of the ledger still in force is replaced (normally just `replaces`): the
    // topic has one partition, so the later commit in the log wins, whatever versions say. Never
    // superseded before it was imported, however the writers' clocks drifted.
    sqlx::query(
        "UPDATE cost_imports SET superseded_at = GREATEST($4, imported_at), superseded_by = $3
          WHERE tenant = $1 AND ledger_id = $2 AND superseded_at IS NULL AND import_id <> $3",
    )
    .bind(env.tenant.as_str())
    .bind(env.ledger_id)
    .bind(env.import_id)
    .bind(env.recorded_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
