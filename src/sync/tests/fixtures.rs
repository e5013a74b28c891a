//! Concept specs for the checker tests: small Requesting, LibraryCache and Scheduling concepts whose
//! schemas come from schemars, as the real concepts' do.

#![allow(dead_code)] // the structs exist for their schemas; nothing deserializes them

use concept_core::{ActionKind, ActionSpec, ConceptSpec};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(JsonSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestIn {
    pub path: String,
}

#[derive(JsonSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestOut {
    pub request: String,
}

#[derive(JsonSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RespondIn {
    pub request: String,
    pub status: Option<u16>,
}

#[derive(JsonSchema, Deserialize)]
pub struct Empty {}

#[derive(JsonSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIn {
    pub user_id: String,
}

#[derive(JsonSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LikedOut {
    pub track_ids: Vec<String>,
}

#[derive(JsonSchema, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Like {
    pub track_id: String,
    pub liked_at: Option<String>,
}

#[derive(JsonSchema, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Full,
    Partial,
}

#[derive(JsonSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeIn {
    pub user_id: String,
    pub likes: Vec<Like>,
    pub limit: Option<u32>,
    pub mode: Option<Mode>,
    pub weight: Option<f64>,
    pub public: Option<bool>,
}

#[derive(JsonSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeOut {
    pub added: u32,
}

#[derive(JsonSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncIn {
    pub user_id: String,
    pub likes: Option<Vec<Like>>,
}

#[derive(JsonSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Library {
    pub likes: Vec<Like>,
    pub count: u64,
}

#[derive(JsonSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LibraryOut {
    pub library: Library,
}

#[derive(JsonSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TickIn {
    pub at: String,
}

#[derive(JsonSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StaleIn {
    pub limit: u32,
}

#[derive(JsonSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StaleOut {
    pub user_ids: Vec<String>,
}

pub fn concepts() -> Vec<ConceptSpec> {
    vec![
        ConceptSpec {
            name: "Requesting".into(),
            actions: vec![
                ActionSpec::of::<RequestIn, RequestOut>("request", ActionKind::Action).with_open_input(),
                ActionSpec::of::<RespondIn, Empty>("respond", ActionKind::Action).with_open_input(),
            ],
        },
        ConceptSpec {
            name: "LibraryCache".into(),
            actions: vec![
                ActionSpec::of::<MergeIn, MergeOut>("merge", ActionKind::Action),
                ActionSpec::of::<SyncIn, Empty>("sync", ActionKind::Action),
                ActionSpec::of::<UserIn, LikedOut>("_getLiked", ActionKind::Query),
                ActionSpec::of::<UserIn, LibraryOut>("_getLibrary", ActionKind::Query),
            ],
        },
        ConceptSpec {
            name: "Scheduling".into(),
            actions: vec![
                ActionSpec::of::<TickIn, Empty>("tick", ActionKind::System),
                ActionSpec::of::<StaleIn, StaleOut>("_staleUsers", ActionKind::Query),
            ],
        },
    ]
}

#[test]
fn print_fixture_schemas() {
    for c in concepts() {
        for a in &c.actions {
            println!("{}.{} input {}", c.name, a.name, a.input);
            println!("{}.{} output {}", c.name, a.name, a.output);
        }
    }
}
