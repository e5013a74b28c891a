//! The LibraryCache concept: a local, queryable snapshot of each user's music library (tracks,
//! likes, plays, playlists) taken from an external music service.
//!
//! Its spec is `LibraryCache.concept` beside this crate's Cargo.toml. Actions (`ingest`, `sync`,
//! `merge`, `clear`) decide events in [`decide`]; [`apply`] turns events into projection rows;
//! queries in [`queries`] read those rows. It depends on `concept-core` only.

pub mod apply;
pub mod decide;
pub mod events;
pub mod model;
pub mod queries;
pub mod rows;
pub mod validate;

use concept_core::input::{decode, encode};
use concept_core::{
    ActionCtx, ActionError, ActionKind, ActionSpec, Concept, ConceptSpec, Decision, EventMeta, ExpectedVersion,
    ProjectionRead, ProjectionTxn, StoreFault,
};
use events::LibraryEvent;
use model::*;
use serde_json::Value;

pub const NAME: &str = "LibraryCache";

#[derive(Debug, Default, Clone)]
pub struct LibraryCache;

impl LibraryCache {
    pub fn new() -> Self {
        LibraryCache
    }
}

fn unknown(kind: &str, name: &str) -> ActionError {
    ActionError::not_found("UNKNOWN_ACTION", format!("LibraryCache has no {kind} named {name:?}"))
}

impl Concept for LibraryCache {
    type Event = LibraryEvent;

    fn spec(&self) -> ConceptSpec {
        use ActionKind::{Action, Query};
        ConceptSpec {
            name: NAME.to_string(),
            actions: vec![
                ActionSpec::of::<LibraryInput, ChangeOutput>("ingest", Action),
                ActionSpec::of::<LibraryInput, ChangeOutput>("sync", Action),
                ActionSpec::of::<MergeInput, ChangeOutput>("merge", Action),
                ActionSpec::of::<UserInput, UserOutput>("clear", Action),
                ActionSpec::of::<GetLikedInput, GetLikedOutput>("_getLiked", Query),
                ActionSpec::of::<GetPlaylistInput, GetPlaylistOutput>("_getPlaylist", Query),
                ActionSpec::of::<UserInput, PlaylistsOutput>("_getPlaylists", Query),
                ActionSpec::of::<ResolvePlaylistInput, PlaylistsOutput>("_resolvePlaylist", Query),
                ActionSpec::of::<GetTracksInput, GetTracksOutput>("_getTracks", Query),
                ActionSpec::of::<GetTrackInput, Track>("_getTrack", Query),
                ActionSpec::of::<GetPlaysInput, GetPlaysOutput>("_getPlays", Query),
                ActionSpec::of::<GetStatusInput, StatusOutput>("_getStatus", Query),
                ActionSpec::of::<StaleUsersInput, StaleUsersOutput>("_staleUsers", Query),
                ActionSpec::of::<GetChangesInput, ChangesOutput>("_getChanges", Query),
                ActionSpec::of::<GetTracksInput, GetLikesOutput>("_getLikes", Query),
                ActionSpec::of::<NoInput, UsersOutput>("_getUsers", Query),
                ActionSpec::of::<GetLikedTracksInput, LikedTracksOutput>("_getLikedTracks", Query),
                ActionSpec::of::<GetPlaylistTracksInput, PlaylistTracksOutput>("_getPlaylistTracks", Query),
            ],
        }
    }

    fn event_kind(event: &LibraryEvent) -> &'static str {
        event.kind()
    }

    fn perform(
        &self,
        ctx: &ActionCtx,
        view: &dyn ProjectionRead,
        action: &str,
        input: Value,
    ) -> Result<Decision<LibraryEvent>, ActionError> {
        let (user, expected, events, output) = match action {
            "ingest" => {
                let input: LibraryInput = decode("LibraryCache.ingest", input)?;
                let (expected, plan) = decide::ingest(ctx, view, input)?;
                (plan.out.user_id.clone(), expected, plan.events, encode(&plan.out)?)
            }
            "sync" => {
                let input: LibraryInput = decode("LibraryCache.sync", input)?;
                let (expected, plan) = decide::sync(ctx, view, input)?;
                (plan.out.user_id.clone(), expected, plan.events, encode(&plan.out)?)
            }
            "merge" => {
                let input: MergeInput = decode("LibraryCache.merge", input)?;
                let (expected, plan) = decide::merge(ctx, view, input)?;
                (plan.out.user_id.clone(), expected, plan.events, encode(&plan.out)?)
            }
            "clear" => {
                let input: UserInput = decode("LibraryCache.clear", input)?;
                let (expected, events) = decide::clear(view, &input.user_id)?;
                let out = encode(&UserOutput {
                    user_id: input.user_id.clone(),
                })?;
                (input.user_id, expected, events, out)
            }
            other => return Err(unknown("action", other)),
        };
        Ok(Decision {
            output,
            appends: vec![(user, ExpectedVersion::Exact(expected), events)],
        })
    }

    fn query(
        &self,
        ctx: &ActionCtx,
        view: &dyn ProjectionRead,
        query: &str,
        input: Value,
    ) -> Result<Value, ActionError> {
        let name = format!("LibraryCache.{query}");
        match query {
            "_getLiked" => encode(&queries::get_liked(view, decode(&name, input)?)?),
            "_getPlaylist" => encode(&queries::get_playlist(view, decode(&name, input)?)?),
            "_getPlaylists" => encode(&queries::get_playlists(view, decode(&name, input)?)?),
            "_resolvePlaylist" => encode(&queries::resolve_playlist(view, decode(&name, input)?)?),
            "_getTracks" => encode(&queries::get_tracks(view, decode(&name, input)?)?),
            "_getTrack" => encode(&queries::get_track(view, decode(&name, input)?)?),
            "_getPlays" => encode(&queries::get_plays(view, decode(&name, input)?)?),
            "_getStatus" => encode(&queries::get_status(ctx, view, decode(&name, input)?)?),
            "_staleUsers" => encode(&queries::stale_users(ctx, view, decode(&name, input)?)?),
            "_getChanges" => encode(&queries::get_changes(view, decode(&name, input)?)?),
            "_getLikes" => encode(&queries::get_likes(view, decode(&name, input)?)?),
            "_getUsers" => encode(&queries::get_users(view, decode(&name, input)?)?),
            "_getLikedTracks" => encode(&queries::get_liked_tracks(view, decode(&name, input)?)?),
            "_getPlaylistTracks" => encode(&queries::get_playlist_tracks(view, decode(&name, input)?)?),
            other => Err(unknown("query", other)),
        }
    }

    fn apply(&self, meta: &EventMeta, event: &LibraryEvent, txn: &mut dyn ProjectionTxn) -> Result<(), StoreFault> {
        apply::apply(meta, event, txn)
    }
}
