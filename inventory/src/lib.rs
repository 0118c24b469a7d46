//! Synthetic multi-cloud inventories with known answers.
//!
//! vtag's tagging engine turns messy native tags, names and accounts into clean virtual tags. To
//! measure how well it does that — and to load demos and benchmarks with something that looks like
//! a real estate — this crate generates AWS, Azure and GCP resources exactly as a collector posts
//! them to `POST /api/v1/resources/observe`, each with the ground truth it was generated from:
//!
//! - realistic ids (ARNs, Azure resource ids, GCP full resource names), a dozen-odd accounts /
//!   subscriptions / projects that each mostly belong to one team, owner and environment;
//! - names following conventions that carry the truth (`payments-api-prod-007`);
//! - native tags as messy as real ones: keys and values in many spellings, tags missing, a small
//!   known share of wrong values, tooling tags; every spelling one the seed schema
//!   (`vtag_domain::tagging::TagSchema::seed_default`) maps back to the truth;
//! - [`FocusExport`]: what the clouds would bill for the inventory, as a FOCUS billing export
//!   (CSV), with charges of resources the inventory never saw and charges of no resource;
//! - [`score`]: per-key precision / recall / accuracy of derived tags against the truth.
//!
//! Output is a pure function of the configuration: the same seed gives byte-identical output on
//! every platform (the PRNG is our own), and resource `i` is the same however many are generated,
//! so a million resources stream in constant memory and any one can be regenerated alone.
//!
//! ```
//! use vtag_inventory::{Generator, GeneratorConfig};
//!
//! let generator = Generator::new(GeneratorConfig::new(42)).unwrap();
//! for r in generator.resources(3) {
//!     println!("{} {:?}", serde_json::to_string(&r.observed).unwrap(), r.truth);
//! }
//! assert_eq!(generator.resource(2), generator.resources(3).nth(2).unwrap());
//! ```
//!
//! The `vtag-generate` binary writes the same as JSON lines, ready-to-post observe batches, or a
//! FOCUS billing export.

mod accounts;
mod clouds;
mod focus;
mod generator;
mod messy;
mod naming;
mod org;
mod prng;
mod score;
mod taxonomy;

pub use accounts::Account;
pub use clouds::Provider;
pub use focus::{format_amount, BillingAccount, FocusConfig, FocusExport, FocusRow, FocusTotals, AMOUNT_SCALE, FOCUS_COLUMNS};
pub use generator::{GeneratedResource, Generator, GeneratorConfig, ObservedItem};
pub use messy::Mess;
pub use score::{score, KeyScore, Score};

#[cfg(test)]
mod focus_tests;
#[cfg(test)]
mod tests;
