//! Property tests: the parser (and the checker after it) never panics, whatever the input, and
//! printing a syntax tree then parsing it back gives the same tree.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Number, Value};

use super::fixtures::concepts;
use crate::sync::lexer::KEYWORDS;
use crate::sync::{
    check, parse_sync_file, ActionPattern, Arg, CmpOp, Expr, Invocation, Pos, Sync, SyncFile, Term, WhereClause,
};

/// Pieces of sync text, valid and not, for token soups.
const PIECES: &[&str] = &[
    "sync",
    "when",
    "where",
    "then",
    "not",
    "for",
    "in",
    "true",
    "false",
    "null",
    "Requesting",
    "request",
    "LibraryCache",
    "_getLiked",
    "userId",
    "x",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ":",
    ",",
    ".",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "=",
    "!",
    "-",
    "\"s\"",
    "\"\\u00e9\"",
    "\"open",
    "\\",
    "0",
    "-1",
    "1.5e3",
    "007",
    "1e999",
    "#",
    "# comment\n",
    "\n",
    "@",
    "é",
    "\u{0}",
];

fn check_does_not_panic(text: &str) {
    if let Ok(file) = parse_sync_file("p.sync", text) {
        let _ = check(&[file], &concepts());
    }
}

proptest! {
    // Failing cases are kept beside this file (props.regressions) rather than in a top-level folder.
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn parsing_arbitrary_text_never_panics(text in any::<String>()) {
        check_does_not_panic(&text);
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check_does_not_panic(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn parsing_token_soups_never_panics(
        pieces in prop::collection::vec((prop::sample::select(PIECES), prop::sample::select(&[" ", "\n", ""][..])), 0..80)
    ) {
        let text: String = pieces.iter().flat_map(|(piece, sep)| [*piece, *sep]).collect();
        check_does_not_panic(&text);
        let framed = format!("sync S when A.a () where {text} then B.b ()");
        check_does_not_panic(&framed);
    }

    #[test]
    fn printing_then_parsing_gives_the_same_tree(file in sync_file()) {
        let text = file.to_string();
        let mut parsed = match parse_sync_file("p.sync", &text) {
            Ok(parsed) => parsed,
            Err(errors) => return Err(TestCaseError::fail(format!("{text}\n{errors:?}"))),
        };
        parsed.erase_positions();
        prop_assert_eq!(&parsed, &file, "printed as:\n{}", text);
        prop_assert_eq!(parsed.to_string(), text);
    }

    #[test]
    fn checking_generated_syncs_never_panics(file in sync_file()) {
        let errors = check(&[file], &concepts());
        prop_assert!(errors.iter().all(|e| !e.message.is_empty()));
    }
}

// ----- generated syntax trees (all positions are `Pos::default()`) ------------------------------

fn ident() -> impl Strategy<Value = String> {
    let any_ident = "[a-z_][a-zA-Z0-9_]{0,6}".prop_filter("not a keyword", |s| !KEYWORDS.contains(&s.as_str()));
    prop_oneof![any_ident, known_name()]
}

/// Concept names: sometimes those of the test fixtures, so that the checker gets past them.
fn concept_name() -> impl Strategy<Value = String> {
    let known = prop::sample::select(&["Requesting", "LibraryCache", "Scheduling"][..]).prop_map(str::to_string);
    prop_oneof!["[A-Z][a-zA-Z0-9_]{0,6}", known]
}

/// Action names may be keywords (`LibraryCache.sync`); some are those of the test fixtures.
fn action_name() -> impl Strategy<Value = String> {
    let known = prop::sample::select(&["request", "respond", "merge", "_getLiked", "_getLibrary", "tick"][..]);
    prop_oneof![
        4 => "_?[a-z][a-zA-Z0-9]{0,6}",
        1 => prop::sample::select(&KEYWORDS[..]).prop_map(str::to_string),
        4 => known.prop_map(str::to_string),
    ]
}

/// Field names, arguments and variables the fixtures know, so that the checker looks deeper.
fn known_name() -> impl Strategy<Value = String> {
    prop::sample::select(
        &[
            "userId", "request", "likes", "trackId", "trackIds", "library", "count", "at", "mode",
        ][..],
    )
    .prop_map(str::to_string)
}

/// Argument names and object keys: usually identifiers, sometimes anything (printed quoted).
fn key() -> impl Strategy<Value = String> {
    prop_oneof![4 => ident(), 1 => any::<String>(), 1 => prop::sample::select(&KEYWORDS[..]).prop_map(str::to_string)]
}

fn literal() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        any::<String>().prop_map(Value::String),
    ]
}

fn term() -> impl Strategy<Value = Term> {
    prop_oneof![
        ident().prop_map(|v| Term::Var(v, Pos::default())),
        literal().prop_map(|l| Term::Lit(l, Pos::default()))
    ]
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![3 => ident(), 1 => prop::sample::select(&KEYWORDS[..]).prop_map(str::to_string)]
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        ident().prop_map(|v| Expr::Var(v, Pos::default())),
        (ident(), prop::collection::vec(field_name(), 1..4)).prop_map(|(b, f)| Expr::Field(b, f, Pos::default())),
        literal().prop_map(|l| Expr::Lit(l, Pos::default())),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|items| Expr::List(items, Pos::default())),
            prop::collection::vec((key(), inner), 0..4)
                .prop_map(|entries| Expr::Object(unique(entries), Pos::default())),
        ]
    })
}

/// Keeps the first entry of every name.
fn unique<V>(entries: Vec<(String, V)>) -> Vec<(String, V)> {
    let mut out: Vec<(String, V)> = Vec::new();
    for (name, value) in entries {
        if !out.iter().any(|(n, _)| *n == name) {
            out.push((name, value));
        }
    }
    out
}

fn args<V: std::fmt::Debug>(value: impl Strategy<Value = V>) -> impl Strategy<Value = Vec<Arg<V>>> {
    prop::collection::vec((key(), value), 0..4).prop_map(|entries| {
        unique(entries)
            .into_iter()
            .map(|(name, value)| Arg {
                name,
                value,
                pos: Pos::default(),
            })
            .collect()
    })
}

fn pattern() -> impl Strategy<Value = ActionPattern> {
    (concept_name(), action_name(), args(term()), args(term())).prop_map(|(concept, action, inputs, outputs)| {
        ActionPattern {
            concept,
            action,
            inputs,
            outputs,
            pos: Pos::default(),
            action_pos: Pos::default(),
        }
    })
}

fn invocation() -> impl Strategy<Value = Invocation> {
    (concept_name(), action_name(), args(expr())).prop_map(|(concept, action, args)| Invocation {
        concept,
        action,
        args,
        pos: Pos::default(),
        action_pos: Pos::default(),
    })
}

fn cmp_op() -> impl Strategy<Value = CmpOp> {
    prop::sample::select(&[CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge][..])
}

fn where_clause() -> impl Strategy<Value = WhereClause> {
    prop_oneof![
        (any::<bool>(), pattern()).prop_map(|(negated, pattern)| WhereClause::Query { negated, pattern }),
        (expr(), cmp_op(), expr()).prop_map(|(lhs, op, rhs)| WhereClause::Compare { lhs, op, rhs }),
        (ident(), expr()).prop_map(|(var, list)| WhereClause::In {
            var,
            pos: Pos::default(),
            list
        }),
    ]
}

fn sync() -> impl Strategy<Value = Sync> {
    (
        concept_name(),
        prop::collection::vec(pattern(), 1..3),
        prop::collection::vec(where_clause(), 0..4),
        prop::collection::vec(invocation(), 1..3),
    )
        .prop_map(|(name, when, where_, then)| Sync {
            name,
            pos: Pos::default(),
            when,
            where_,
            then,
        })
}

fn sync_file() -> impl Strategy<Value = SyncFile> {
    prop::collection::vec(sync(), 1..3).prop_map(|syncs| SyncFile {
        path: "p.sync".to_string(),
        // Sync names must be unique within a file.
        syncs: syncs
            .into_iter()
            .enumerate()
            .map(|(i, s)| Sync {
                name: format!("{}{i}", s.name),
                ..s
            })
            .collect(),
    })
}
