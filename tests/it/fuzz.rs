//! Fuzzing, as proptest-driven tests that run in CI: random and mutated input to the sync
//! parser, the trace parser (and runner), and the decoding of action inputs through the real
//! engine. Nothing may panic; every refusal must be a clear one (never INTERNAL), and parser
//! errors must carry their place (`file:line:col` for syncs, `file:line` for traces).
//!
//! 256 cases per target by default; `PROPTEST_CASES=N` runs more.

use crate::common;

use concept_core::ErrorKind;
use librarycache::engine::{Engine, Registry};
use librarycache::store::SledStore;
use librarycache::sync::{check, parse_sync_file};
use librarycache::trace::{parse_trace, parse_trace_bytes, run_trace, trace_clock};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use serde_json::{json, Map, Value};
use std::path::Path;
use std::sync::Arc;

/// The files of `dir` ending in `.ext`, as text: the seeds the mutations start from.
fn corpus(dir: &str, ext: &str) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("corpus file"))
        .collect()
}

/// One edit of a text.
#[derive(Debug, Clone)]
enum Edit {
    Delete {
        at: usize,
        len: usize,
    },
    Insert {
        at: usize,
        text: String,
    },
    /// Copy a span elsewhere (repeats structure: nested brackets, duplicate syncs).
    Duplicate {
        from: usize,
        len: usize,
        to: usize,
    },
    Truncate {
        at: usize,
    },
    /// Replace a character with one of the language's own.
    Replace {
        at: usize,
        with: char,
    },
}

/// Fragments that mean something to the sync or trace languages (or JSON).
const FRAGMENTS: &[&str] = &[
    "sync ",
    "when\n",
    "where\n",
    "then\n",
    "not ",
    " for ",
    " in ",
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
    "<=",
    "\"",
    "\\",
    "\"$v\"",
    "=> ",
    "=> error ",
    "# c\n",
    "\n",
    "    ",
    "\t",
    "null",
    "true",
    "-1",
    "1e999",
    "18446744073709551616",
    "\u{0}",
    "\u{feff}",
    "é",
    "🎵",
    "LibraryCache.",
    "Requesting.request ",
    "_getLiked",
];

fn edit() -> impl Strategy<Value = Edit> {
    let text = prop_oneof![
        proptest::sample::select(FRAGMENTS).prop_map(str::to_string),
        any::<String>(),
        "[\\[\\]{}()\"]{1,40}",
    ];
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), text).prop_map(|(at, text)| Edit::Insert { at, text }),
        (any::<usize>(), 1usize..200, any::<usize>()).prop_map(|(from, len, to)| Edit::Duplicate { from, len, to }),
        any::<usize>().prop_map(|at| Edit::Truncate { at }),
        (
            any::<usize>(),
            proptest::sample::select(&['(', ')', '{', '}', '"', ':', '\n', ' ', '#', '.', ',', '$'][..])
        )
            .prop_map(|(at, with)| Edit::Replace { at, with }),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let n = chars.len();
        let pos = |i: usize| if n == 0 { 0 } else { i % (n + 1) };
        match e {
            Edit::Delete { at, len } => {
                let at = pos(*at);
                let end = (at + len).min(n);
                chars.drain(at..end);
            }
            Edit::Insert { at, text } => {
                let at = pos(*at);
                chars.splice(at..at, text.chars());
            }
            Edit::Duplicate { from, len, to } => {
                let from = pos(*from);
                let end = (from + len).min(n);
                let span: Vec<char> = chars[from..end].to_vec();
                let to = pos(*to);
                chars.splice(to..to, span);
            }
            Edit::Truncate { at } => chars.truncate(pos(*at)),
            Edit::Replace { at, with } => {
                if n > 0 {
                    chars[at % n] = *with;
                }
            }
        }
    }
    chars.into_iter().collect()
}

/// A corpus file with a few edits, or text from scratch.
fn mutated(corpus: Vec<String>) -> impl Strategy<Value = String> {
    let n = corpus.len();
    prop_oneof![
        4 => (0..n, proptest::collection::vec(edit(), 1..8)).prop_map(move |(i, edits)| apply(&corpus[i], &edits)),
        1 => any::<String>(),
        1 => proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..60).prop_map(|parts| parts.concat()),
    ]
}

/// Runs `test` over `strategy` for the configured number of cases (PROPTEST_CASES, 256 by
/// default), failing with the minimal failing input.
fn fuzz<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let cases = runner.config().cases;
    match runner.run(&strategy, test) {
        Ok(()) => println!("{name}: {cases} cases, no panic"),
        Err(TestError::Fail(reason, input)) => panic!("{name}: {reason}\nminimal input: {input:?}"),
        Err(TestError::Abort(reason)) => panic!("{name}: aborted: {reason}"),
    }
}

/// `message` begins with `file:line:col: ` (line ≥ 1, col ≥ 1) or `file: ` for whole-file
/// problems.
fn placed(message: &str, file: &str, lines: usize) -> bool {
    let Some(rest) = message.strip_prefix(file).and_then(|r| r.strip_prefix(':')) else {
        return false;
    };
    let mut parts = rest.splitn(3, ':');
    let (Some(line), Some(col)) = (parts.next(), parts.next()) else {
        return false;
    };
    match (line.parse::<usize>(), col.parse::<usize>()) {
        (Ok(line), Ok(col)) => line >= 1 && line <= lines + 1 && col >= 1,
        _ => false,
    }
}

fn specs() -> Vec<concept_core::ConceptSpec> {
    Registry::standard().specs()
}

#[test]
fn the_sync_parser_and_checker_never_panic_on_mutated_syncs() {
    let concepts = specs();
    fuzz("sync parser", mutated(corpus("syncs", "sync")), |text| {
        match parse_sync_file("f.sync", &text) {
            Ok(file) => {
                for e in check(&[file], &concepts) {
                    let shown = e.to_string();
                    prop_assert!(placed(&shown, "f.sync", text.lines().count()), "unplaced: {shown}");
                }
            }
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for e in errors {
                    let shown = e.to_string();
                    prop_assert!(placed(&shown, "f.sync", text.lines().count()), "unplaced: {shown}");
                }
            }
        }
        Ok(())
    });
}

#[test]
fn the_trace_parser_never_panics_and_places_its_errors() {
    fuzz("trace parser", mutated(corpus("specs", "trace")), |text| {
        if let Err(e) = parse_trace("f.trace", &text) {
            prop_assert!(
                e.line >= 1 && e.line <= text.lines().count() + 1,
                "line {} of {e}",
                e.line
            );
            let place = format!("f.trace:{}: ", e.line);
            prop_assert!(e.to_string().starts_with(&place), "unplaced: {}", e);
        }
        Ok(())
    });
    fuzz(
        "trace bytes",
        proptest::collection::vec(any::<u8>(), 0..2000),
        |bytes| {
            if let Err(e) = parse_trace_bytes("f.trace", &bytes) {
                prop_assert!(e.line >= 1, "{e}");
                let place = format!("f.trace:{}: ", e.line);
                prop_assert!(e.to_string().starts_with(&place), "unplaced: {}", e);
            }
            Ok(())
        },
    );
}

fn engine() -> Engine {
    Engine::new(Arc::new(SledStore::temporary().expect("store")), Registry::standard())
        .with_syncs(common::shipped_syncs())
}

#[test]
fn mutated_traces_run_without_panic() {
    let clock = trace_clock();
    let engine = engine().with_clock(Arc::new(clock.clone()));
    fuzz("trace runner", mutated(corpus("specs", "trace")), |text| {
        if let Ok(steps) = parse_trace("f.trace", &text) {
            let report = run_trace(&engine, &clock, "f.trace", &steps);
            for s in &report.steps {
                prop_assert!(s.actual["code"] != json!("INTERNAL"), "an internal error: {}", s.actual);
            }
        }
        Ok(())
    });
}

/// Field names the concepts know, so random objects hit real fields as well as unknown ones.
const FIELDS: &[&str] = &[
    "userId",
    "tracks",
    "likes",
    "plays",
    "playlists",
    "unlikes",
    "removedPlaylists",
    "id",
    "trackId",
    "likedAt",
    "playedAt",
    "name",
    "entries",
    "title",
    "durationMs",
    "year",
    "genres",
    "limit",
    "offset",
    "since",
    "until",
    "maxAge",
    "sinceVersion",
    "playlistId",
    "nameOrUri",
    "path",
    "request",
    "status",
    "snapshotId",
];

/// Strings that mean something: ids in use, times, durations, paths.
const STRINGS: &[&str] = &[
    "",
    " ",
    "u",
    "user:alice",
    "track:a",
    "playlist:1",
    "2025-10-01T09:00:00Z",
    "2025-13-01T09:00:00Z",
    "1969-12-31T23:59:59.999999999-23:59",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
    "24h",
    "500ms",
    "99999999999999999999d",
    "/liked",
    "/like",
    "/playlist",
    "/playlist/resolve",
    "/status",
    "\u{0}",
    "a\nb",
    "$v",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        proptest::sample::select(STRINGS).prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 80, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec(
                (
                    prop_oneof![
                        3 => proptest::sample::select(FIELDS).prop_map(str::to_string),
                        1 => any::<String>()
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// Every path (object keys and array indexes) into `v`.
fn paths(v: &Value, at: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    out.push(at.clone());
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                at.push(Value::from(k.as_str()));
                paths(child, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                at.push(Value::from(i));
                paths(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

/// `v` with the value at `path` replaced (or removed, when `with` is None).
fn replace(v: &mut Value, path: &[Value], with: Option<Value>) {
    let Some((last, parents)) = path.split_last() else {
        if let Some(w) = with {
            *v = w;
        }
        return;
    };
    let mut node = v;
    for p in parents {
        node = match (node, p) {
            (Value::Object(map), Value::String(k)) => map.get_mut(k).expect("path"),
            (Value::Array(items), Value::Number(i)) => &mut items[i.as_u64().expect("index") as usize],
            _ => return,
        };
    }
    match (node, last, with) {
        (Value::Object(map), Value::String(k), Some(w)) => {
            map.insert(k.clone(), w);
        }
        (Value::Object(map), Value::String(k), None) => {
            map.remove(k);
        }
        (Value::Array(items), Value::Number(i), Some(w)) => items[i.as_u64().expect("index") as usize] = w,
        (Value::Array(items), Value::Number(i), None) => {
            items.remove(i.as_u64().expect("index") as usize);
        }
        _ => {}
    }
}

/// A valid library input with one place changed to an arbitrary value (or removed).
fn mutated_library() -> impl Strategy<Value = Value> {
    let valid = common::alice_library();
    (any::<usize>(), proptest::option::weighted(0.8, json_value())).prop_map(move |(pick, with)| {
        let mut v = valid.clone();
        let mut all = Vec::new();
        paths(&v, &mut Vec::new(), &mut all);
        let path = all[pick % all.len()].clone();
        replace(&mut v, &path, with);
        v
    })
}

/// The answer is a success or a clear refusal: never a panic, never INTERNAL, always a code and
/// a sentence.
fn clear_answer(what: &str, answer: &Result<Value, concept_core::ActionError>) -> Result<(), TestCaseError> {
    if let Err(e) = answer {
        prop_assert!(e.kind != ErrorKind::Internal, "{what}: internal error {e}");
        prop_assert!(!e.code.is_empty() && !e.message.is_empty(), "{what}: {e:?}");
        prop_assert!(e.message.len() <= 2_000, "{what}: a {} byte message", e.message.len());
    }
    Ok(())
}

#[test]
fn arbitrary_action_inputs_are_answered_or_refused_clearly() {
    let engine = engine();
    common::ok(&engine, "LibraryCache.ingest", common::alice_library());
    let names: Vec<(String, String)> = Registry::standard()
        .specs()
        .into_iter()
        .flat_map(|c| {
            let concept = c.name.clone();
            c.actions.into_iter().map(move |a| (concept.clone(), a.name))
        })
        .collect();
    let strategy = (proptest::sample::select(names), json_value());
    fuzz("action inputs", strategy, |((concept, action), input)| {
        let answer = engine.invoke(&concept, &action, input);
        clear_answer(&format!("{concept}.{action}"), &answer.result)?;
        if let Some(e) = &answer.flow_error {
            prop_assert!(e.kind != ErrorKind::Internal, "{concept}.{action}: flow error {e}");
        }
        Ok(())
    });
    // Requests with arbitrary bodies go through the syncs' matching and `where` queries.
    let paths = proptest::sample::select(vec!["/liked", "/like", "/playlist", "/playlist/resolve", "/status"]);
    fuzz("requests", (paths, json_value()), |(path, body)| {
        let mut fields = match body {
            Value::Object(map) => map,
            other => Map::from_iter([("userId".to_string(), other)]),
        };
        fields.insert("path".into(), json!(path));
        let answer = engine.invoke("Requesting", "request", Value::Object(fields));
        clear_answer(path, &answer.result)?;
        Ok(())
    });
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    fuzz(
        "mutated libraries",
        (0..3usize, mutated_library()),
        |(action, input)| {
            let action = ["ingest", "sync", "merge"][action];
            let answer = engine.invoke("LibraryCache", action, input);
            clear_answer(action, &answer.result)?;
            if answer.result.is_ok() {
                accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        },
    );
    println!("mutated libraries: {} accepted", accepted.into_inner());
    // Whatever was accepted, the projections still rebuild to what they are.
    let before = common::dump(&engine);
    engine.rebuild().expect("rebuild");
    let after = common::dump(&engine);
    assert!(
        before == after,
        "rebuild differs from live after fuzzing (key: live | rebuilt):\n{}",
        common::dump_diff(&before, &after, 10)
    );
}

/// Found by the fuzzer above (about one run in thirty): a float in a track's kept fields came
/// back one ulp off after a rebuild, because serde_json parsed the stored event's text with its
/// fast, inexact float reader. The workspace enables `float_roundtrip`; this pins it.
#[test]
fn floats_in_kept_fields_survive_a_rebuild_exactly() {
    let engine = engine();
    let odd: f64 = "-2.073282243828416e-68".parse().expect("a float");
    let gain: f64 = "0.30000000000000004".parse().expect("a float");
    common::ok(
        &engine,
        "LibraryCache.ingest",
        json!({"userId": "u", "tracks": [{"id": "t", "odd": odd, "gain": gain}]}),
    );
    let before = common::dump(&engine);
    engine.rebuild().expect("rebuild");
    let after = common::dump(&engine);
    assert!(before == after, "{}", common::dump_diff(&before, &after, 10));
    let track = common::ok(&engine, "LibraryCache._getTrack", json!({"trackId": "t"}));
    assert_eq!(track["odd"].as_f64().map(f64::to_bits), Some(odd.to_bits()), "{track}");
    assert_eq!(
        track["gain"].as_f64().map(f64::to_bits),
        Some(gain.to_bits()),
        "{track}"
    );
}
