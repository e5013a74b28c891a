//! Parser tests: every construct of the language, the canonical printed form, and the exact text
//! of syntax errors.

use serde_json::json;

use crate::sync::{
    parse_sync_file, ActionPattern, Arg, CmpOp, Expr, Invocation, Pos, Sync, SyncFile, Term, WhereClause,
};

const LIKED: &str = r#"# Answer GET-style requests for liked songs through the Requesting concept.
sync LikedSongs
when
    Requesting.request (path: "/liked", userId) : (request)
where
    LibraryCache._getLiked (userId) : (trackIds)
then
    Requesting.respond (request, trackIds)
"#;

fn parse(text: &str) -> SyncFile {
    match parse_sync_file("t.sync", text) {
        Ok(file) => file,
        Err(errors) => panic!("unexpected errors: {errors:?}"),
    }
}

fn parse_one(text: &str) -> Sync {
    let mut file = parse(text);
    assert_eq!(file.syncs.len(), 1);
    file.syncs.remove(0)
}

/// The error messages (`file:line:col: message`) of a text that must not parse.
fn errors(text: &str) -> Vec<String> {
    match parse_sync_file("t.sync", text) {
        Ok(file) => panic!("expected errors, parsed {file:?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn at(line: u32, col: u32) -> Pos {
    Pos::new("t.sync".into(), line, col)
}

fn var(name: &str, line: u32, col: u32) -> Term {
    Term::Var(name.into(), at(line, col))
}

fn arg<V>(name: &str, value: V, line: u32, col: u32) -> Arg<V> {
    Arg {
        name: name.into(),
        value,
        pos: at(line, col),
    }
}

fn erased(sync: &Sync) -> Sync {
    let mut sync = sync.clone();
    sync.erase_positions();
    sync
}

/// Builds a position-free tree from text, for comparing structure.
fn shape(text: &str) -> Sync {
    erased(&parse_one(text))
}

#[test]
fn parses_the_design_example_with_positions() {
    let sync = parse_one(LIKED);
    let expected = Sync {
        name: "LikedSongs".into(),
        pos: at(2, 1),
        when: vec![ActionPattern {
            concept: "Requesting".into(),
            action: "request".into(),
            inputs: vec![
                arg("path", Term::Lit(json!("/liked"), at(4, 31)), 4, 25),
                arg("userId", var("userId", 4, 41), 4, 41),
            ],
            outputs: vec![arg("request", var("request", 4, 52), 4, 52)],
            pos: at(4, 5),
            action_pos: at(4, 16),
        }],
        where_: vec![WhereClause::Query {
            negated: false,
            pattern: ActionPattern {
                concept: "LibraryCache".into(),
                action: "_getLiked".into(),
                inputs: vec![arg("userId", var("userId", 6, 29), 6, 29)],
                outputs: vec![arg("trackIds", var("trackIds", 6, 40), 6, 40)],
                pos: at(6, 5),
                action_pos: at(6, 18),
            },
        }],
        then: vec![Invocation {
            concept: "Requesting".into(),
            action: "respond".into(),
            args: vec![
                arg("request", Expr::Var("request".into(), at(8, 25)), 8, 25),
                arg("trackIds", Expr::Var("trackIds".into(), at(8, 34)), 8, 34),
            ],
            pos: at(8, 5),
            action_pos: at(8, 16),
        }],
    };
    assert_eq!(sync, expected);
    assert!(!sync.when[0].matches_errors());
}

#[test]
fn prints_the_canonical_form() {
    let sync = parse_one(LIKED);
    let printed = sync.to_string();
    assert_eq!(
        printed,
        "sync LikedSongs\nwhen\n    Requesting.request (path: \"/liked\", userId) : (request)\nwhere\n    \
         LibraryCache._getLiked (userId) : (trackIds)\nthen\n    Requesting.respond (request, trackIds)\n"
    );
    assert_eq!(erased(&parse_one(&printed)), erased(&sync));
}

#[test]
fn whitespace_and_newlines_are_insignificant() {
    let squashed = "sync LikedSongs when Requesting.request(path:\"/liked\",userId):(request) where \
                    LibraryCache._getLiked(userId):(trackIds) then Requesting.respond(request,trackIds)";
    assert_eq!(shape(squashed), shape(LIKED));
    let spread = "sync\nLikedSongs\nwhen\nRequesting\n.\nrequest\n(\npath\n:\n\"/liked\"\n,\nuserId\n,\n)\n:\n(\nrequest\n)\n\
                  where LibraryCache._getLiked (userId) : (trackIds) # trailing comment\nthen Requesting.respond (request, trackIds,)";
    assert_eq!(shape(spread), shape(LIKED));
}

#[test]
fn parses_several_syncs_and_comments() {
    let text =
        "# first\nsync A when C.a () then C.b () # after\n\n# second\nsync B when C.a () : () then C.b ()\n# end";
    let file = parse(text);
    let names: Vec<&str> = file.syncs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["A", "B"]);
    assert_eq!(file.syncs[1].pos, at(5, 1));
    assert!(file.syncs[0].when[0].outputs.is_empty());
    assert!(file.syncs[1].when[0].outputs.is_empty());
    assert!(parse("# only a comment\n").syncs.is_empty());
    assert!(parse("").syncs.is_empty());
}

#[test]
fn parses_several_when_patterns_with_optional_commas() {
    let sync = parse_one("sync S when A.a (x) : (y), B.b (y)\n C.c () then D.d (x), D.e (y) D.f ()");
    let whens: Vec<String> = sync
        .when
        .iter()
        .map(|p| format!("{}.{}", p.concept, p.action))
        .collect();
    assert_eq!(whens, ["A.a", "B.b", "C.c"]);
    let thens: Vec<&str> = sync.then.iter().map(|i| i.action.as_str()).collect();
    assert_eq!(thens, ["d", "e", "f"]);
}

#[test]
fn parses_every_kind_of_literal() {
    let sync = parse_one(
        r#"sync S when A.a (s: "a\"b\\c\n\u00e9\ud83d\ude00", i: 42, n: -7, f: 1.5, e: -2.5e-3, big: 1E3, t: true, f2: false, z: null) then B.b ()"#,
    );
    let values: Vec<serde_json::Value> = sync.when[0]
        .inputs
        .iter()
        .map(|a| match &a.value {
            Term::Lit(v, _) => v.clone(),
            Term::Var(name, _) => panic!("unexpected variable {name}"),
        })
        .collect();
    assert_eq!(
        values,
        [
            json!("a\"b\\c\né😀"),
            json!(42),
            json!(-7),
            json!(1.5),
            json!(-0.0025),
            json!(1000.0),
            json!(true),
            json!(false),
            json!(null)
        ]
    );
}

#[test]
fn parses_output_patterns_that_match_errors() {
    let sync = parse_one("sync S when LibraryCache.sync (userId) : (error, code: \"NOT_FOUND\") then B.b ()");
    let pattern = &sync.when[0];
    assert!(pattern.matches_errors());
    assert_eq!(pattern.outputs[0], arg("error", var("error", 1, 43), 1, 43));
    assert_eq!(
        pattern.outputs[1],
        arg("code", Term::Lit(json!("NOT_FOUND"), at(1, 56)), 1, 50)
    );
}

#[test]
fn parses_where_queries_negations_comparisons_and_in() {
    let sync = parse_one(
        "sync S when A.a (x) : (lib)\n\
         where\n\
         not Q._none (x), Q._rows (x) : (rows)\n\
         lib.likes.count == 3 a != \"b\", c < 1 d <= 2.5 e > null f >= lib.n\n\
         item in rows, like in lib.likes\n\
         then B.b ()",
    );
    let w = &sync.where_;
    assert_eq!(w.len(), 10);
    assert!(
        matches!(&w[0], WhereClause::Query { negated: true, pattern } if pattern.action == "_none" && pattern.outputs.is_empty())
    );
    assert!(matches!(&w[1], WhereClause::Query { negated: false, pattern } if pattern.action == "_rows"));
    assert_eq!(
        w[2],
        WhereClause::Compare {
            lhs: Expr::Field("lib".into(), vec!["likes".into(), "count".into()], at(4, 1)),
            op: CmpOp::Eq,
            rhs: Expr::Lit(json!(3), at(4, 20)),
        }
    );
    let ops: Vec<CmpOp> = w[3..8]
        .iter()
        .map(|c| match c {
            WhereClause::Compare { op, .. } => *op,
            other => panic!("not a comparison: {other:?}"),
        })
        .collect();
    assert_eq!(ops, [CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge]);
    assert_eq!(
        w[8],
        WhereClause::In {
            var: "item".into(),
            pos: at(5, 1),
            list: Expr::Var("rows".into(), at(5, 9))
        }
    );
    assert_eq!(
        w[9],
        WhereClause::In {
            var: "like".into(),
            pos: at(5, 15),
            list: Expr::Field("lib".into(), vec!["likes".into()], at(5, 23)),
        }
    );
}

#[test]
fn parses_lists_objects_and_field_access_in_then() {
    let sync = parse_one(
        "sync S when A.a (trackId, lib) then\n\
         LibraryCache.merge (userId: lib.user.id, likes: [{trackId: trackId}, {trackId}, {\"liked-at\": null, n: [1, [], {}]}],)",
    );
    let args = &sync.then[0].args;
    assert_eq!(
        args[0].value,
        Expr::Field("lib".into(), vec!["user".into(), "id".into()], at(2, 29))
    );
    let Expr::List(items, list_pos) = &args[1].value else {
        panic!("not a list: {:?}", args[1].value)
    };
    assert_eq!(*list_pos, at(2, 49));
    assert_eq!(
        items[0],
        Expr::Object(
            vec![("trackId".into(), Expr::Var("trackId".into(), at(2, 60)))],
            at(2, 50)
        )
    );
    assert_eq!(
        items[1],
        Expr::Object(
            vec![("trackId".into(), Expr::Var("trackId".into(), at(2, 71)))],
            at(2, 70)
        )
    );
    let Expr::Object(entries, _) = &items[2] else {
        panic!("not an object: {:?}", items[2])
    };
    assert_eq!(entries[0].0, "liked-at");
    assert_eq!(entries[0].1, Expr::Lit(json!(null), at(2, 94)));
    assert_eq!(entries[1].0, "n");
    assert!(matches!(&entries[1].1, Expr::List(inner, _) if inner.len() == 3));
    assert_eq!(
        sync.then[0].to_string(),
        "LibraryCache.merge (userId: lib.user.id, likes: [{trackId}, {trackId}, {\"liked-at\": null, n: [1, [], {}]}])"
    );
}

#[test]
fn quoted_argument_names_and_keyword_field_names() {
    let sync = parse_one("sync S when A.a (\"in\": x, \"content-type\": \"t\") then B.b (y: x.in.not)");
    assert_eq!(sync.when[0].inputs[0].name, "in");
    assert_eq!(sync.when[0].inputs[1].name, "content-type");
    assert_eq!(
        sync.then[0].args[0].value,
        Expr::Field("x".into(), vec!["in".into(), "not".into()], at(1, 61))
    );
    assert_eq!(sync.when[0].to_string(), "A.a (\"in\": x, \"content-type\": \"t\")");
}

#[test]
fn where_may_be_empty_and_then_needs_an_invocation() {
    let sync = parse_one("sync S when A.a () where then B.b ()");
    assert!(sync.where_.is_empty());
    assert_eq!(
        errors("sync S when A.a () then"),
        ["t.sync:1:24: expected an action invocation `Concept.action (...)` after `then` in sync S, found end of file"]
    );
}

// ----- syntax errors ---------------------------------------------------------------------------

#[test]
fn reports_an_unclosed_input_pattern() {
    let text = "sync LikedSongs\nwhen\n    Requesting.request (path: \"/liked\" : (request)\nthen R.r ()";
    assert_eq!(
        errors(text),
        ["t.sync:3:40: expected ',' or ')' to close the input pattern of Requesting.request, found ':'"]
    );
}

#[test]
fn reports_structural_mistakes_precisely() {
    let cases: [(&str, &str); 16] = [
        ("sync", "t.sync:1:5: expected a name after `sync`, found end of file"),
        ("sync S then B.b ()", "t.sync:1:8: expected `when` after `sync S`, found keyword `then`"),
        ("sync S when then B.b ()", "t.sync:1:13: expected an action pattern `Concept.action (...)` after `when` in sync S, found keyword `then`"),
        ("sync S when A.a ()", "t.sync:1:19: expected another action pattern, `where` or `then` in sync S, found end of file"),
        ("sync S when A () then B.b ()", "t.sync:1:15: expected '.' after `A` (write `Concept.action (...)`), found '('"),
        ("sync S when A.a x then B.b ()", "t.sync:1:17: expected '(' to open the input pattern of A.a, found `x`"),
        ("sync S when A.a () : x then B.b ()", "t.sync:1:22: expected '(' after ':' to open the output pattern of A.a, found `x`"),
        ("sync S when A.a (x: [1]) then B.b ()", "t.sync:1:21: lists and objects are only allowed in `then` arguments, not in argument `x` in the input pattern of A.a"),
        ("sync S when A.a (x: y.z) then B.b ()", "t.sync:1:22: field access is not allowed in a pattern (argument `x` in the input pattern of A.a); bind the value to a variable and compare it in `where`"),
        ("sync S when A.a (x, x) then B.b ()", "t.sync:1:21: argument `x` appears twice in the input pattern of A.a"),
        ("sync S when A.a (in) then B.b ()", "t.sync:1:18: `in` is a keyword; write it in quotes (\"in\") to use it as an argument name in the input pattern of A.a"),
        ("sync S when A.a (\"x\") then B.b ()", "t.sync:1:21: expected ':' and a value after the quoted argument name \"x\", found ')'"),
        ("sync S when A.a () then B.b () : (x)", "t.sync:1:32: an invocation in `then` has no output pattern: unexpected ':' after the arguments of B.b"),
        ("sync S when A.a () where x then B.b ()", "t.sync:1:28: expected a comparison operator (==, !=, <, <=, >, >=), found keyword `then`"),
        ("sync S when A.a () where Q._q x then B.b ()", "t.sync:1:31: expected '(' to open the input pattern of Q._q, found `x`"),
        ("sync S when A.a () where x == then B.b ()", "t.sync:1:31: expected a value (variable, literal, list or object) for the right side of '==', found keyword `then`"),
    ];
    for (text, expected) in cases {
        assert_eq!(errors(text), [expected], "for {text:?}");
    }
}

#[test]
fn reports_errors_inside_then_values() {
    let cases: [(&str, &str); 5] = [
        ("sync S when A.a () then B.b (x: [1 2])", "t.sync:1:36: expected ',' or ']' to close the list in argument `x` in the arguments of B.b, found number 2"),
        ("sync S when A.a () then B.b (x: {a: 1, a: 2})", "t.sync:1:40: key \"a\" appears twice in an object in argument `x` in the arguments of B.b"),
        ("sync S when A.a () then B.b (x: {true: 1})", "t.sync:1:34: `true` is a keyword; write it in quotes (\"true\") to use it as an object key"),
        ("sync S when A.a () then B.b (x: {\"k\"})", "t.sync:1:37: expected ':' and a value after the quoted key \"k\", found '}'"),
        ("sync S when A.a () then B.b (x: y.)", "t.sync:1:35: expected a field name after '.' in argument `x` in the arguments of B.b, found ')'"),
    ];
    for (text, expected) in cases {
        assert_eq!(errors(text), [expected], "for {text:?}");
    }
}

#[test]
fn reports_lexical_errors() {
    let cases: [(&str, &str); 8] = [
        (
            "sync S when A.a (x: \"abc) then B.b ()",
            "t.sync:1:21: unterminated string (a string must end on the line it starts)",
        ),
        (
            "sync S when A.a (x: \"a\\qb\") then B.b ()",
            "t.sync:1:23: invalid escape `\\q` in a string (JSON escapes: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)",
        ),
        (
            "sync S when A.a (x: \"\\ud800\") then B.b ()",
            "t.sync:1:22: unpaired surrogate `\\uD800` in a string",
        ),
        (
            "sync S when A.a (x: 007) then B.b ()",
            "t.sync:1:21: invalid number `007`: leading zeros are not allowed",
        ),
        (
            "sync S when A.a (x: 1e999) then B.b ()",
            "t.sync:1:21: number `1e999` is out of range",
        ),
        (
            "sync S when A.a (x: @@) then B.b ()",
            "t.sync:1:21: unexpected characters `@@`",
        ),
        (
            "sync S when A.a () where x = 1 then B.b ()",
            "t.sync:1:28: unexpected character `=` (comparisons use '==')",
        ),
        (
            "sync S when A.a () where !Q._q () then B.b ()",
            "t.sync:1:26: unexpected character `!` (use `not` before a query to negate it, or '!=' to compare)",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(errors(text), [expected], "for {text:?}");
    }
}

#[test]
fn columns_count_characters_not_bytes() {
    assert_eq!(
        errors("sync S when A.a (x: \"é😀\", ?) then B.b ()"),
        ["t.sync:1:27: unexpected character `?`"]
    );
}

#[test]
fn reports_the_first_error_of_every_sync_and_recovers() {
    let text =
        "sync A when X.x ( then B.b ()\nsync B when Y.y () then B.b ()\nstray\nsync C when Z.z () then B.b (x:)\n";
    assert_eq!(
        errors(text),
        [
            "t.sync:1:19: expected an argument name or ')' in the input pattern of X.x, found keyword `then`",
            "t.sync:3:1: expected another action invocation or the next `sync` after sync B, found `stray`",
            "t.sync:4:32: expected a value (variable, literal, list or object) for argument `x` in the arguments of B.b, found ')'",
        ]
    );
}

#[test]
fn reports_a_sync_name_defined_twice_in_a_file() {
    assert_eq!(
        errors("sync A when X.x () then B.b ()\n\nsync A when X.x () then B.b ()"),
        ["t.sync:3:1: sync `A` is defined twice: here and at t.sync:1:1"]
    );
}

#[test]
fn bounds_nesting_depth() {
    let ok = format!("sync S when A.a () then B.b (x: {}{})", "[".repeat(64), "]".repeat(64));
    assert!(parse_sync_file("t.sync", &ok).is_ok());
    let deep = format!(
        "sync S when A.a () then B.b (x: {}{})",
        "[{a: ".repeat(20_000),
        "}]".repeat(20_000)
    );
    let errors = errors(&deep);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].ends_with("lists and objects nest more than 64 levels deep"),
        "{errors:?}"
    );
}

#[test]
fn text_outside_a_sync_is_an_error() {
    assert_eq!(
        errors("LibraryCache.merge ()"),
        ["t.sync:1:1: expected `sync` to start a synchronization, found `LibraryCache`"]
    );
}

#[test]
fn floats_read_back_exactly() {
    // serde_json's default float parser can be one ulp off; printed floats must read back exactly.
    for f in [
        -4.113414025111976e-166_f64,
        0.1,
        1e300,
        5e-324,
        1.7976931348623157e308,
        3.0,
    ] {
        let text = format!("sync S when A.a (x: {}) then B.b ()", serde_json::Value::from(f));
        let sync = parse_one(&text);
        assert_eq!(sync.when[0].inputs[0].value, Term::Lit(json!(f), at(1, 21)), "{text}");
    }
}

#[test]
fn a_sync_for_several_concepts_is_one_sync_per_concept() {
    let file = parse(
        "sync ReadOnConnect for Source in SpotifySource, PlexSource\n\
         when\n    Source.connect (userId) : (userId)\n\
         where\n    not Source._getFetch (userId)\n\
         then\n    Source.fetch (userId)\n    LibraryCache.touch (userId)\n",
    );
    let names: Vec<&str> = file.syncs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["SpotifySourceReadOnConnect", "PlexSourceReadOnConnect"]);
    for (sync, concept) in file.syncs.iter().zip(["SpotifySource", "PlexSource"]) {
        assert_eq!(sync.when[0].concept, concept);
        let WhereClause::Query { pattern, negated: true } = &sync.where_[0] else {
            panic!("a negated query: {:?}", sync.where_)
        };
        assert_eq!(pattern.concept, concept);
        assert_eq!(sync.then[0].concept, concept);
        assert_eq!(sync.then[1].concept, "LibraryCache", "other concepts stay as written");
        assert_eq!(sync.pos, Pos::new("t.sync".into(), 1, 1));
    }
}

#[test]
fn a_sync_for_several_concepts_must_name_them_and_its_expansions_must_not_clash() {
    assert_eq!(
        errors("sync A for in X\nwhen\n    X.a (k) : (k)\nthen\n    X.b (k)\n"),
        ["t.sync:1:12: expected a name after `sync A for`, found keyword `in`"]
    );
    assert_eq!(
        errors("sync A for S X\nwhen\n    X.a (k) : (k)\nthen\n    X.b (k)\n"),
        ["t.sync:1:14: expected `in` after `sync A for S`, found `X`"]
    );
    assert_eq!(
        errors("sync A for S in X\nwhen\n    X.a (k) : (k)\nthen\n    X.b (k)\n"),
        ["t.sync:1:12: sync A says `for S in …` but never names S as a concept (`S.action (...)`)"]
    );
    let clash = errors("sync A for S in X, X\nwhen\n    S.a (k) : (k)\nthen\n    S.b (k)\n");
    assert_eq!(clash.len(), 1, "{clash:?}");
    assert!(clash[0].contains("XA"), "{clash:?}");
}
