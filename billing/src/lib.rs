//! FOCUS billing exports in vtag's terms.
//!
//! A FOCUS (FinOps Open Cost and Usage Specification) export is a table of charges. vtag reads it
//! ([`read_focus`]: CSV, plain or gzip, or Parquet; FOCUS 1.0–1.2 column names), refuses it whole
//! at the first bad cell (naming row and column), and aggregates the charges into [`Ledger`]s: one
//! per billing account and billing period, holding cost per resource per charge day and the
//! unallocatable pools (rows without a resource: fees, support, tax, credits). Amounts are exact
//! decimals ([`Amount`]), never floats, so allocations add back up to the bill.
//!
//! Pure: no I/O beyond the reader it is handed, no clocks.

mod amount;
mod charge;
mod columns;
mod error;
mod events;
mod ledger;
mod parquet;
mod monthly;
mod read;
mod split;

pub use amount::{Amount, ParsedAmount, SCALE};
pub use charge::{cloud_of, ChargeCategory};
pub use columns::Column;
pub use error::ImportError;
pub use events::{decide_import, hex, ledger_id, CostEnvelope, CostEvent, CostRecord, CostSplitsChanged, CostLinesRecorded, CostPeriodImported, LedgerHead, ResourceCost, LINES_PER_CHUNK};
pub use ledger::{BilledResource, Costs, Ledger, LedgerKey, PoolLine, ResourceLine};
pub use monthly::{monthly_costs, MonthlyCost};
pub use read::{read_focus_csv, BillingFile};
pub use self::parquet::{read_focus, read_focus_parquet};
pub use split::{largest_remainder, Percentage, PoolSelector, SplitError, SplitMethod, SplitRule, SplitsDoc, TagMatch};

#[cfg(test)]
mod tests;
