//! Runs every `specs/*.trace` through the real engine, with the default syncs of `syncs/`, on a
//! real fresh store of each kind (sled, and PostgreSQL when configured).
//! A failure prints the file, line, step, expected and actual output.

use crate::common;

use common::TestStore;
use librarycache::engine::{Engine, Registry, SyncSet};
use librarycache::sync::load_checked;
use librarycache::trace::{parse_trace, run_trace, trace_clock};
use std::sync::Arc;

/// The syncs the service loads by default (`syncs/`), checked.
fn default_syncs() -> SyncSet {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("syncs");
    let files = load_checked(&dir, &Registry::standard().specs()).unwrap_or_else(|errors| {
        panic!(
            "syncs/ does not check:\n{}",
            errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        )
    });
    SyncSet::new(files)
}

fn every_spec_trace_passes(store: TestStore) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("specs/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "trace"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no trace files in {}", dir.display());
    let mut failures = Vec::new();
    for file in &files {
        let name = format!("specs/{}", file.file_name().unwrap_or_default().to_string_lossy());
        let text = std::fs::read_to_string(file).expect("readable trace");
        let steps = match parse_trace(&name, &text) {
            Ok(steps) => steps,
            Err(e) => {
                failures.push(e.to_string());
                continue;
            }
        };
        assert!(!steps.is_empty(), "{name} has no steps");
        let fresh = store.sibling();
        let clock = trace_clock();
        let engine = Engine::new(fresh.open(), Registry::standard())
            .with_syncs(default_syncs())
            .with_clock(Arc::new(clock.clone()));
        failures.extend(run_trace(&engine, &clock, &name, &steps).failures());
    }
    assert!(
        failures.is_empty(),
        "{} trace step(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn a_mismatch_is_reported_with_file_line_expected_and_actual(store: TestStore) {
    let text = "LibraryCache._getLiked {\"userId\": \"nobody\"} => {\"trackIds\": []}\n";
    let steps = parse_trace("specs/x.trace", text).expect("parses");
    let clock = trace_clock();
    let engine = Engine::new(store.open(), Registry::standard()).with_clock(Arc::new(clock.clone()));
    let failures = run_trace(&engine, &clock, "specs/x.trace", &steps).failures();
    assert_eq!(failures.len(), 1);
    assert!(failures[0].starts_with("specs/x.trace:1: refused"), "{}", failures[0]);
    assert!(failures[0].contains("expected: {\"trackIds\":[]}"), "{}", failures[0]);
    assert!(failures[0].contains("USER_NOT_FOUND"), "{}", failures[0]);
}

#[test]
fn malformed_trace_files_are_rejected_with_their_line() {
    let cases = [
        ("not a step\n", 1, "expected a step"),
        ("LibraryCache.ingest {\"userId\": }\n", 1, "not valid JSON"),
        ("\n\nLibraryCache.ingest {} => error lower\n", 3, "must name a code"),
        ("LibraryCache.ingest {} => {oops}\n", 1, "expected output"),
        ("LibraryCache.ingest [1]\n", 1, "must be a JSON object"),
        ("clock tomorrow\n", 1, "`clock` needs an RFC 3339 time"),
        ("\nadvance 1h30m\n", 2, "`advance` needs a duration"),
        ("LibraryCache._getUsers {}\n    advance 1h\n", 2, "is not indented"),
    ];
    for (text, line, needle) in cases {
        let e = parse_trace("t.trace", text).expect_err(text);
        assert_eq!(e.line, line, "{text:?}: {e}");
        assert!(e.to_string().contains(needle), "{text:?}: {e}");
    }
}

fn a_variable_binds_once_and_must_match_after(store: TestStore) {
    let text = r#"
LibraryCache.ingest {"userId": "u"} => {"version": "$v"}
LibraryCache._getStatus {"userId": "u"} => {"version": "$v"}
LibraryCache.touch {"userId": "u"} => {"version": "$v"}
LibraryCache._getChanges {"userId": "u", "sinceVersion": "$v"} => {"changes": [{"kind": "touched"}]}
LibraryCache._getChanges {"userId": "u", "sinceVersion": "$unbound"} => {"changes": []}
"#;
    let steps = parse_trace("vars.trace", text).expect("parses");
    let clock = trace_clock();
    let engine = Engine::new(store.open(), Registry::standard()).with_clock(Arc::new(clock.clone()));
    let failures = run_trace(&engine, &clock, "vars.trace", &steps).failures();
    // Step 3: the touch moved the version on, so it no longer equals $v; step 5 uses an unbound name.
    assert_eq!(failures.len(), 2, "{failures:#?}");
    assert!(failures[0].starts_with("vars.trace:4: `version` is"), "{}", failures[0]);
    assert!(failures[0].contains("not $v ="), "{}", failures[0]);
    assert!(
        failures[1].starts_with("vars.trace:6: $unbound is used before"),
        "{}",
        failures[1]
    );
}

fn the_clock_of_a_trace_is_set_and_moved_by_the_trace_alone(store: TestStore) {
    // The same trace twice on one clock: each run starts from the default time, so the second
    // does not inherit the first's moves; `clock` and `advance` set what every action sees.
    let text = r#"
LibraryCache.ingest {"userId": "u"} => {}
LibraryCache._getStatus {"userId": "u"} => {"ingestedAt": "2026-01-01T00:00:00Z", "syncedAt": "2026-01-01T00:00:00Z"}
clock 2031-03-01T08:00:00Z
LibraryCache.touch {"userId": "u"} => {}
advance 90s
LibraryCache._getStatus {"userId": "u", "maxAge": "1m"} => {"syncedAt": "2031-03-01T08:00:00Z", "stale": true}
LibraryCache.clear {"userId": "u"} => {}
"#;
    let steps = parse_trace("clock.trace", text).expect("parses");
    let clock = trace_clock();
    let engine = Engine::new(store.open(), Registry::standard()).with_clock(Arc::new(clock.clone()));
    for _ in 0..2 {
        let failures = run_trace(&engine, &clock, "clock.trace", &steps).failures();
        assert!(failures.is_empty(), "{failures:#?}");
    }
}

on_each_store!(
    the_clock_of_a_trace_is_set_and_moved_by_the_trace_alone,
    every_spec_trace_passes,
    a_mismatch_is_reported_with_file_line_expected_and_actual,
    a_variable_binds_once_and_must_match_after,
);
