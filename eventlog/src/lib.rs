//! The event log: everything about how vtag's facts are written to and read from Kafka.
//!
//! - [`topics`]: topic names, partition count, Kafka-compatible key placement, topic creation.
//! - [`schemas`]: the Avro contract in `schemas/avro/` and its registration (TopicRecordNameStrategy).
//! - [`codec`]: domain events ⇄ Confluent wire format through `schema_registry_converter`.
//! - [`cost`]: cost ledger events (FOCUS imports) ⇄ Avro.
//! - [`records`]: job markers and tagging-configuration changes (not resource events).
//! - [`position`]: log positions, the read-your-writes token handed to clients.
//! - [`kafka`]: producer and consumer settings shared by every binary.

mod avro_value;
mod avro_wire;
pub mod codec;
pub mod compliance;
pub mod cost;
pub mod kafka;
pub mod position;
pub mod records;
pub mod schemas;
pub mod topics;

pub use codec::{DecodeError, EventCodec};
pub use records::{ConfigRecord, DocumentKind, LogRecord, ProgressMarker};
pub use position::LogPosition;
pub use topics::{ends_of, high_watermarks, partition_count, partition_for, partition_of, EventTopics};
