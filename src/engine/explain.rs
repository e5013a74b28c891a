//! Why a request went unanswered: for each sync whose `when` mentions the request's path, the
//! first thing that did not match in the flow — a `when` pattern no action fit, a join whose
//! values disagreed, a `where` clause that left no binding (with the refusal of its query, if
//! it refused), or a firing whose actions never responded.

use super::matching::{apply_clause, joins, match_action, Bindings, Completed};
use super::Engine;
use crate::sync::{Sync, WhereClause};
use concept_core::{ActionError, ErrorKind};
use serde_json::Value;

impl Engine {
    /// The error for a request flow that settled without `Requesting.respond`.
    pub fn unanswered(&self, path: &str, flow: &[Completed]) -> ActionError {
        let syncs = self.syncs.mentioning("Requesting", "request", "path", path);
        if syncs.is_empty() {
            return ActionError::not_found(
                "NO_SYNC_FOR_PATH",
                format!(
                    "nothing answers POST /api{path}: its first segment is not a concept, and no loaded sync's \
                     `when` mentions Requesting.request with this path"
                ),
            );
        }
        let reasons: Vec<String> = syncs
            .iter()
            .map(|s| format!("sync {} ({}): {}", s.name, s.pos, self.why_not(s, flow)))
            .collect();
        ActionError::new(
            ErrorKind::Internal,
            "UNANSWERED",
            format!("no sync responded to {path}. {}", reasons.join("; ")),
        )
    }

    fn why_not(&self, sync: &Sync, flow: &[Completed]) -> String {
        for p in &sync.when {
            if !flow.iter().any(|a| match_action(p, a, &Bindings::new()).is_some()) {
                return format!("when `{p}` ({}) matched no action of the flow", p.pos);
            }
        }
        let Some((_, start)) = flow.iter().flat_map(|a| joins(sync, a, flow)).next() else {
            return "its when patterns each matched, but not with the same values".to_string();
        };
        let query = |c: &str, q: &str, input: Value| self.query(c, q, input);
        let mut bindings = vec![start];
        for clause in &sync.where_ {
            let outcome = apply_clause(clause, bindings, &query);
            if outcome.bindings.is_empty() {
                let refused = outcome
                    .refusals
                    .first()
                    .map(|e| format!(" (the query refused: {} {})", e.code, e.message))
                    .unwrap_or_default();
                let pos = match clause {
                    WhereClause::Query { pattern, .. } => pattern.pos.clone(),
                    WhereClause::Compare { lhs, .. } => lhs.pos().clone(),
                    WhereClause::In { pos, .. } => pos.clone(),
                };
                return format!("where `{clause}` ({pos}) left no binding{refused}");
            }
            bindings = outcome.bindings;
        }
        "it fired, but none of its actions (or theirs) was a Requesting.respond that succeeded".to_string()
    }
}
