//! The records the store hands back: stored events and the engine's action records.

use chrono::{DateTime, Utc};
use concept_core::EventMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// An event as read back from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub concept: String,
    pub meta: EventMeta,
    /// The event's data (JSON).
    pub data: Vec<u8>,
}

/// The engine's record of one completed action (success or refusal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionRecord {
    /// Assigned by the store at commit.
    pub id: u64,
    pub flow: Uuid,
    pub concept: String,
    pub action: String,
    pub input: Value,
    /// The output object; for a refusal `{"error", "code"}`.
    pub output: Value,
    pub failed: bool,
    pub at: DateTime<Utc>,
    /// The sync that fired this action, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<String>,
    /// The matched actions that caused the firing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cause: Vec<u64>,
    /// Cascade depth: 0 for an external call.
    #[serde(default)]
    pub depth: u32,
    /// Global sequence numbers of the events this action appended (first, last); assigned by
    /// the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<(u64, u64)>,
}
