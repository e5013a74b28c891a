//! The Notifying concept: an application's own concept, composed with LibraryCache only through
//! a sync (`syncs/notify.sync`). Users follow one another; when a user's library gains likes,
//! the sync calls `notify` for each follower, and `_getNotifications` lists what they were told.
//! Its spec is `Notifying.concept` beside Cargo.toml; `specs/notifying.trace` runs it.
//!
//! What any concept may and may not do, shown here:
//! - it reads and writes only its own rows (`ProjectionRead`, `ProjectionTxn`), never another
//!   concept's: what it needs from LibraryCache, the sync passes in its input;
//! - it reads no clock but the action's time (`ActionCtx::now`), so traces replay it exactly;
//! - it decides events in its actions and derives rows from them in `apply` only, so a rebuild
//!   from the log reproduces its rows.
//!
//! Rows (keys under the concept's own namespace; ids never contain NUL):
//! - `f\0{user}\0{follower}` → empty: `follower` follows `user`;
//! - `n\0{user}\0{seq}` → a [`Notification`] (JSON), `seq` the event's global sequence number
//!   (big-endian), so notifications list oldest first.

use concept_core::{
    ActionCtx, ActionError, Actions, Concept, Decision, EventMeta, ExpectedVersion, ProjectionRead, ProjectionTxn,
    StoreFault,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const NAME: &str = "Notifying";

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FollowInput {
    /// The user followed.
    pub user_id: String,
    /// The user who follows them.
    pub follower_id: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FollowOutput {
    pub user_id: String,
    pub follower_id: String,
    /// How many followers `userId` has now.
    pub followers: usize,
}

/// One liked song as a LibraryCache merge names it (only the track id is used).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LikedTrack {
    pub track_id: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifyInput {
    /// Who is told.
    pub user_id: String,
    /// Whose likes they are told about.
    pub about: String,
    /// The songs liked.
    pub likes: Vec<LikedTrack>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct NotifyOutput {
    /// The notification's id.
    pub notification: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserInput {
    pub user_id: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Followers {
    pub follower_ids: Vec<String>,
}

/// What a user was told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub id: String,
    pub about: String,
    pub track_ids: Vec<String>,
    /// RFC 3339, the time of the `notify` action.
    pub at: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Notifications {
    pub notifications: Vec<Notification>,
}

/// The facts Notifying records.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum NotifyingEvent {
    Followed { user: String, follower: String },
    Unfollowed { user: String, follower: String },
    Notified { user: String, notification: Notification },
}

#[derive(Debug, Default, Clone)]
pub struct Notifying;

impl Notifying {
    pub fn new() -> Self {
        Notifying
    }
}

fn follower_prefix(user: &str) -> Vec<u8> {
    [b"f\0", user.as_bytes(), b"\0"].concat()
}

fn follower_key(user: &str, follower: &str) -> Vec<u8> {
    [follower_prefix(user), follower.as_bytes().to_vec()].concat()
}

fn notification_prefix(user: &str) -> Vec<u8> {
    [b"n\0", user.as_bytes(), b"\0"].concat()
}

fn check_id(field: &str, id: &str) -> Result<(), ActionError> {
    if id.trim().is_empty() || id.contains('\0') {
        return Err(ActionError::invalid(
            "EMPTY_ID",
            format!("`{field}` must be a non-empty id without NUL characters"),
        ));
    }
    Ok(())
}

fn followers_of(view: &dyn ProjectionRead, user: &str) -> Result<Vec<String>, ActionError> {
    let prefix = follower_prefix(user);
    let rows = view.scan_prefix(&prefix)?;
    Ok(rows
        .iter()
        .map(|(key, _)| String::from_utf8_lossy(&key[prefix.len()..]).into_owned())
        .collect())
}

type Decided<O> = Result<Decision<NotifyingEvent, O>, ActionError>;

impl Notifying {
    fn follow(&self, _ctx: &ActionCtx, view: &dyn ProjectionRead, input: &FollowInput) -> Decided<FollowOutput> {
        check_id("userId", &input.user_id)?;
        check_id("followerId", &input.follower_id)?;
        if input.user_id == input.follower_id {
            return Err(ActionError::invalid(
                "INVALID_FOLLOW",
                "a user cannot follow themselves",
            ));
        }
        let followers = followers_of(view, &input.user_id)?;
        let already = followers.contains(&input.follower_id);
        let output = FollowOutput {
            user_id: input.user_id.clone(),
            follower_id: input.follower_id.clone(),
            followers: followers.len() + usize::from(!already),
        };
        if already {
            return Ok(Decision::output_only(output));
        }
        let version = view.stream_version(&input.user_id)?;
        Ok(Decision::append(
            output,
            input.user_id.clone(),
            ExpectedVersion::Exact(version),
            vec![NotifyingEvent::Followed {
                user: input.user_id.clone(),
                follower: input.follower_id.clone(),
            }],
        ))
    }

    fn unfollow(&self, _ctx: &ActionCtx, view: &dyn ProjectionRead, input: &FollowInput) -> Decided<FollowOutput> {
        let followers = followers_of(view, &input.user_id)?;
        if !followers.contains(&input.follower_id) {
            return Err(ActionError::not_found(
                "NOT_FOLLOWING",
                format!("{:?} does not follow {:?}", input.follower_id, input.user_id),
            ));
        }
        let version = view.stream_version(&input.user_id)?;
        Ok(Decision::append(
            FollowOutput {
                user_id: input.user_id.clone(),
                follower_id: input.follower_id.clone(),
                followers: followers.len() - 1,
            },
            input.user_id.clone(),
            ExpectedVersion::Exact(version),
            vec![NotifyingEvent::Unfollowed {
                user: input.user_id.clone(),
                follower: input.follower_id.clone(),
            }],
        ))
    }

    fn notify(&self, ctx: &ActionCtx, _view: &dyn ProjectionRead, input: &NotifyInput) -> Decided<NotifyOutput> {
        check_id("userId", &input.user_id)?;
        check_id("about", &input.about)?;
        let mut track_ids: Vec<String> = Vec::new();
        for like in &input.likes {
            if !track_ids.contains(&like.track_id) {
                track_ids.push(like.track_id.clone());
            }
        }
        if track_ids.is_empty() {
            return Err(ActionError::invalid("NOTHING_TO_NOTIFY", "`likes` names no track"));
        }
        let id = ctx.new_id().to_string();
        let notification = Notification {
            id: id.clone(),
            about: input.about.clone(),
            track_ids,
            at: ctx.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        Ok(Decision::append(
            NotifyOutput { notification: id },
            input.user_id.clone(),
            ExpectedVersion::Any,
            vec![NotifyingEvent::Notified {
                user: input.user_id.clone(),
                notification,
            }],
        ))
    }

    fn get_followers(
        &self,
        _ctx: &ActionCtx,
        view: &dyn ProjectionRead,
        input: UserInput,
    ) -> Result<Followers, ActionError> {
        Ok(Followers {
            follower_ids: followers_of(view, &input.user_id)?,
        })
    }

    fn get_notifications(
        &self,
        _ctx: &ActionCtx,
        view: &dyn ProjectionRead,
        input: UserInput,
    ) -> Result<Notifications, ActionError> {
        let rows = view.scan_prefix(&notification_prefix(&input.user_id))?;
        let notifications = rows
            .iter()
            .map(|(_, value)| serde_json::from_slice(value))
            .collect::<Result<Vec<Notification>, _>>()
            .map_err(|e| ActionError::internal(format!("a stored notification does not decode: {e}")))?;
        Ok(Notifications { notifications })
    }
}

impl Concept for Notifying {
    type Event = NotifyingEvent;

    fn actions(&self) -> Actions<Self> {
        Actions::new(NAME)
            .action("follow", Notifying::follow)
            .action("unfollow", Notifying::unfollow)
            .action("notify", Notifying::notify)
            .query("_getFollowers", Notifying::get_followers)
            .query("_getNotifications", Notifying::get_notifications)
    }

    fn event_kind(event: &NotifyingEvent) -> &'static str {
        match event {
            NotifyingEvent::Followed { .. } => "followed",
            NotifyingEvent::Unfollowed { .. } => "unfollowed",
            NotifyingEvent::Notified { .. } => "notified",
        }
    }

    fn apply(&self, meta: &EventMeta, event: &NotifyingEvent, txn: &mut dyn ProjectionTxn) -> Result<(), StoreFault> {
        match event {
            NotifyingEvent::Followed { user, follower } => txn.put(&follower_key(user, follower), Vec::new()),
            NotifyingEvent::Unfollowed { user, follower } => txn.delete(&follower_key(user, follower)),
            NotifyingEvent::Notified { user, notification } => {
                let key = [notification_prefix(user), meta.seq.to_be_bytes().to_vec()].concat();
                let value = serde_json::to_vec(notification).map_err(StoreFault::new)?;
                txn.put(&key, value);
            }
        }
        Ok(())
    }
}
