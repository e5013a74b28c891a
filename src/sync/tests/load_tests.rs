//! Directory loader tests: which files are read and in what order, and how unreadable, non-UTF-8,
//! malformed and clashing files are reported.

use std::fs;
use std::path::Path;

use crate::sync::{load_checked, load_dir};

use super::fixtures::concepts;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    if let Err(e) = fs::write(dir.join(name), bytes) {
        panic!("cannot write {name}: {e}");
    }
}

fn tempdir() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("cannot make a temporary directory: {e}"),
    }
}

fn load_errors(dir: &Path) -> Vec<String> {
    match load_dir(dir) {
        Ok(files) => panic!("expected errors, loaded {files:?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn reads_every_sync_file_sorted_by_name() {
    let dir = tempdir();
    write(dir.path(), "b.sync", b"sync B when X.x () then Y.y ()");
    write(
        dir.path(),
        "a.sync",
        b"# nothing but a comment\nsync A1 when X.x () then Y.y ()\nsync A2 when X.x () then Y.y ()",
    );
    write(dir.path(), "notes.txt", b"not a sync file {{{");
    write(dir.path(), "c.sync.bak", b"not a sync file {{{");
    if let Err(e) = fs::create_dir(dir.path().join("d.sync")) {
        panic!("cannot make a directory: {e}");
    }
    let files = match load_dir(dir.path()) {
        Ok(files) => files,
        Err(errors) => panic!("unexpected errors: {errors:?}"),
    };
    let names: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    let expected: Vec<String> = ["a.sync", "b.sync"]
        .iter()
        .map(|n| dir.path().join(n).display().to_string())
        .collect();
    assert_eq!(names, expected);
    let syncs: Vec<&str> = files.iter().flat_map(|f| &f.syncs).map(|s| s.name.as_str()).collect();
    assert_eq!(syncs, ["A1", "A2", "B"]);
    assert_eq!(files[0].syncs[0].pos.to_string(), format!("{}:2:1", expected[0]));
}

#[test]
fn an_empty_directory_has_no_syncs() {
    let dir = tempdir();
    assert!(matches!(load_dir(dir.path()), Ok(files) if files.is_empty()));
}

#[test]
fn reports_a_file_that_is_not_utf8_at_its_first_bad_byte() {
    let dir = tempdir();
    write(dir.path(), "bad.sync", b"sync A\nwhen \xc3\xa9\xff X.x () then Y.y ()");
    let path = dir.path().join("bad.sync").display().to_string();
    assert_eq!(
        load_errors(dir.path()),
        [format!("{path}:2:7: the file is not valid UTF-8 (byte 0xff)")]
    );
}

#[test]
fn reports_errors_of_every_file_and_names_clashing_across_files() {
    let dir = tempdir();
    write(dir.path(), "1.sync", b"sync Same when X.x () then Y.y ()");
    write(dir.path(), "2.sync", b"sync Broken when X.x ( then Y.y ()");
    write(dir.path(), "3.sync", b"\n\nsync Same when X.x () then Y.y ()");
    let p = |n: &str| dir.path().join(n).display().to_string();
    assert_eq!(
        load_errors(dir.path()),
        [
            format!(
                "{}:1:24: expected an argument name or ')' in the input pattern of X.x, found keyword `then`",
                p("2.sync")
            ),
            format!(
                "{}:3:1: sync `Same` is defined twice: here and at {}:1:1",
                p("3.sync"),
                p("1.sync")
            ),
        ]
    );
}

#[test]
fn reports_a_missing_directory() {
    let dir = tempdir();
    let missing = dir.path().join("nope");
    let errors = load_errors(&missing);
    assert_eq!(errors.len(), 1);
    let prefix = format!("{}: cannot read the sync directory: ", missing.display());
    assert!(errors[0].starts_with(&prefix), "{errors:?}");
}

#[test]
fn load_checked_checks_what_it_loads() {
    let dir = tempdir();
    write(
        dir.path(),
        "ok.sync",
        b"sync Ok when Scheduling.tick (at) then LibraryCache.sync (userId: at)",
    );
    assert!(matches!(load_checked(dir.path(), &concepts()), Ok(files) if files.len() == 1));
    write(
        dir.path(),
        "typo.sync",
        b"sync Typo when Scheduling.tick (at) then LibraryCache.sync (usrId: at)",
    );
    let errors: Vec<String> = match load_checked(dir.path(), &concepts()) {
        Ok(files) => panic!("expected errors, loaded {files:?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    };
    let path = dir.path().join("typo.sync").display().to_string();
    assert_eq!(
        errors,
        [
            format!("{path}:1:42: missing required input `userId` of LibraryCache.sync"),
            format!("{path}:1:61: unknown input `usrId` of LibraryCache.sync (did you mean `userId`?)"),
        ]
    );
}
