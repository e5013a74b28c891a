//! The LibraryCache concept: a local, queryable snapshot of each user's music library (tracks,
//! likes, plays, playlists) taken from an external music service.
//!
//! Its spec is `LibraryCache.concept` beside this crate's Cargo.toml. Actions (`ingest`, `sync`,
//! `merge`, `touch`, `rekeyNamed`, `clear`) decide events in [`decide`]; [`apply`] turns events into projection rows;
//! queries in [`queries`] read those rows. It depends on `concept-core` only.

pub mod apply;
pub mod decide;
pub mod events;
pub mod model;
pub mod queries;
pub mod rows;
pub mod validate;

use concept_core::{
    ActionCtx, ActionError, Actions, Concept, Decision, EventMeta, ExpectedVersion, ProjectionRead, ProjectionTxn,
    StoreFault,
};
use events::LibraryEvent;
use model::*;

pub const NAME: &str = "LibraryCache";

#[derive(Debug, Default, Clone)]
pub struct LibraryCache;

impl LibraryCache {
    pub fn new() -> Self {
        LibraryCache
    }
}

type Decided<O> = Result<Decision<LibraryEvent, O>, ActionError>;

/// A planned ingest, sync or merge as the action's decision (one that changes nothing appends
/// nothing).
fn planned((expected, plan): (u64, decide::Plan)) -> Decided<ChangeOutput> {
    if plan.events.is_empty() {
        return Ok(Decision::output_only(plan.out));
    }
    let user = plan.out.user_id.clone();
    Ok(Decision::append(
        plan.out,
        user,
        ExpectedVersion::Exact(expected),
        plan.events,
    ))
}

impl LibraryCache {
    fn ingest(&self, ctx: &ActionCtx, view: &dyn ProjectionRead, input: &LibraryInput) -> Decided<ChangeOutput> {
        planned(decide::ingest(ctx, view, input)?)
    }

    fn sync(&self, ctx: &ActionCtx, view: &dyn ProjectionRead, input: &LibraryInput) -> Decided<ChangeOutput> {
        planned(decide::sync(ctx, view, input)?)
    }

    fn merge(&self, ctx: &ActionCtx, view: &dyn ProjectionRead, input: &MergeInput) -> Decided<ChangeOutput> {
        planned(decide::merge(ctx, view, input)?)
    }

    fn touch(&self, _ctx: &ActionCtx, view: &dyn ProjectionRead, input: &UserInput) -> Decided<ChangeOutput> {
        planned(decide::touch(view, &input.user_id)?)
    }

    fn rekey_named(
        &self,
        ctx: &ActionCtx,
        view: &dyn ProjectionRead,
        input: &RekeyNamedInput,
    ) -> Decided<RekeyNamedOutput> {
        let (expected, plan, moved) = decide::rekey_named(ctx, view, input)?;
        let out = RekeyNamedOutput {
            user_id: plan.out.user_id,
            version: plan.out.version,
            rekeyed: moved.tracks,
            plays: moved.plays,
            likes: moved.likes,
        };
        if plan.events.is_empty() {
            return Ok(Decision::output_only(out));
        }
        let user = out.user_id.clone();
        Ok(Decision::append(
            out,
            user,
            ExpectedVersion::Exact(expected),
            plan.events,
        ))
    }

    fn clear(&self, _ctx: &ActionCtx, view: &dyn ProjectionRead, input: &UserInput) -> Decided<UserOutput> {
        let (expected, events) = decide::clear(view, &input.user_id)?;
        let out = UserOutput {
            user_id: input.user_id.clone(),
        };
        Ok(Decision::append(
            out,
            input.user_id.clone(),
            ExpectedVersion::Exact(expected),
            events,
        ))
    }
}

/// A query of [`queries`] that needs no context, as a table entry.
macro_rules! read {
    ($f:path) => {
        |_: &LibraryCache, _: &ActionCtx, view: &dyn ProjectionRead, input| $f(view, input)
    };
}

/// A query of [`queries`] answering a typed value, written straight to JSON text (no
/// intermediate `serde_json::Value`), as a table entry.
macro_rules! read_json {
    ($f:path) => {
        |_: &LibraryCache, _: &ActionCtx, view: &dyn ProjectionRead, input| queries::to_json(&$f(view, input)?)
    };
}

/// A query of [`queries`] that reads the clock, as a table entry.
macro_rules! read_at {
    ($f:path) => {
        |_: &LibraryCache, ctx: &ActionCtx, view: &dyn ProjectionRead, input| $f(ctx, view, input)
    };
}

impl Concept for LibraryCache {
    type Event = LibraryEvent;

    fn actions(&self) -> Actions<Self> {
        Actions::new(NAME)
            .action("ingest", LibraryCache::ingest)
            .action("sync", LibraryCache::sync)
            .action("merge", LibraryCache::merge)
            .action("touch", LibraryCache::touch)
            .action("rekeyNamed", LibraryCache::rekey_named)
            .action("clear", LibraryCache::clear)
            .query_json::<GetLikedInput, GetLikedOutput, _>("_getLiked", read!(queries::get_liked))
            .query_json::<GetPlaylistInput, GetPlaylistOutput, _>("_getPlaylist", read!(queries::get_playlist))
            .query("_getPlaylists", read!(queries::get_playlists))
            .query_json::<ResolvePlaylistInput, PlaylistsOutput, _>(
                "_resolvePlaylist",
                read_json!(queries::resolve_playlist),
            )
            .query_json::<GetTracksInput, GetTracksOutput, _>("_getTracks", read!(queries::get_tracks))
            .query_json::<GetTrackInput, Track, _>("_getTrack", read!(queries::get_track))
            .query_json::<GetPlaysInput, GetPlaysOutput, _>("_getPlays", read!(queries::get_plays))
            .query("_getStatus", read_at!(queries::get_status))
            .query("_staleUsers", read_at!(queries::stale_users))
            .query_json::<GetChangesInput, ChangesOutput, _>("_getChanges", read_json!(queries::get_changes))
            .query("_getLikes", read!(queries::get_likes))
            .query("_getUsers", read!(queries::get_users))
            .query_json::<GetLikedTracksInput, LikedTracksOutput, _>(
                "_getLikedTracks",
                read!(queries::get_liked_tracks),
            )
            .query_json::<GetPlaylistTracksInput, PlaylistTracksOutput, _>(
                "_getPlaylistTracks",
                read!(queries::get_playlist_tracks),
            )
    }

    fn event_kind(event: &LibraryEvent) -> &'static str {
        event.kind()
    }

    fn apply(&self, meta: &EventMeta, event: &LibraryEvent, txn: &mut dyn ProjectionTxn) -> Result<(), StoreFault> {
        apply::apply(meta, event, txn)
    }
}
