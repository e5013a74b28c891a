//! The web page at `/` in a real browser: Debian's chromium, headless, driven over CDP
//! (headless_chrome) against the real `librarycache serve` binary holding the Alice library.
//! It chooses user:alice, reads the status footer and the liked songs, opens a playlist, clicks
//! Refresh and sees the status and the refresh's flow, saves a screenshot to
//! `<target dir>/web-alice.png`, and checks that an error is shown in the page.
//!
//! With no browser installed the test prints why and passes, unless
//! `LIBRARYCACHE_REQUIRE_BROWSER` is set (as `.ci/run` does): then a missing browser fails it.

use crate::common;
use crate::common::fake_http::Scripted;

use common::lastfm::{scrobble, FakeLastfm};
use common::server::Server;
use common::spotify::{track, FakeSpotify, Liked};
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where Debian installs chromium (`$LIBRARYCACHE_BROWSER` names another binary).
const BROWSERS: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const REQUIRE: &str = "LIBRARYCACHE_REQUIRE_BROWSER";
/// How long a condition on the page may take to come true.
const PATIENCE: Duration = Duration::from_secs(20);

/// The places looked at for a browser: `$LIBRARYCACHE_BROWSER` if set, else Debian's paths.
fn candidates() -> Vec<PathBuf> {
    match std::env::var_os("LIBRARYCACHE_BROWSER") {
        Some(path) => vec![PathBuf::from(path)],
        None => BROWSERS.iter().map(PathBuf::from).collect(),
    }
}

/// A message that shows even though the test harness captures `println!`.
fn say(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}

fn alice() -> Value {
    json!({
        "userId": "user:alice",
        "tracks": [
            {"id": "track:a", "title": "Alpha", "artist": "Ana", "album": "First"},
            {"id": "track:b", "title": "Bravo", "artist": "Ben", "album": "Second"},
            {"id": "track:c", "title": "Charlie", "artist": "Cy", "album": "Third"}
        ],
        "likes": [
            {"trackId": "track:b", "likedAt": "2025-10-02T09:00:00Z"},
            {"trackId": "track:a", "likedAt": "2025-10-01T09:00:00Z"}
        ],
        "plays": [
            {"trackId": "track:a", "playedAt": "2025-10-03T20:15:00Z"},
            {"trackId": "track:b", "playedAt": "2025-10-04T08:00:00Z"}
        ],
        "playlists": [{"id": "playlist:1", "name": "Oct25", "entries": ["track:b", "track:a"]}]
    })
}

/// Evaluates a JavaScript expression in the page and returns its value as JSON (the
/// expression's value goes through `JSON.stringify`).
fn js(tab: &Tab, expression: &str) -> Value {
    let wrapped = format!("JSON.stringify((() => {{ return {expression}; }})())");
    let remote = tab
        .evaluate(&wrapped, false)
        .unwrap_or_else(|e| panic!("evaluating {expression}: {e}"));
    match remote.value {
        Some(Value::String(text)) => serde_json::from_str(&text).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// The text of the page's error alerts (empty when none is shown).
fn alerts(tab: &Tab) -> Value {
    js(
        tab,
        "[...document.querySelectorAll('#alerts .alert')].map(a => a.textContent)",
    )
}

/// Waits until `expression` is truthy in the page; panics with `what`, the expression's last
/// value and the page's alerts otherwise.
fn wait_for(tab: &Tab, what: &str, expression: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let value = js(tab, expression);
        let truthy = match &value {
            Value::Null | Value::Bool(false) => false,
            Value::String(s) => !s.is_empty(),
            Value::Number(n) => n.as_f64() != Some(0.0),
            _ => true,
        };
        if truthy {
            return value;
        }
        if Instant::now() > deadline {
            let text = js(tab, "document.body.innerText");
            panic!(
                "timed out waiting for {what} ({expression});\nalerts: {}\npage text:\n{}",
                alerts(tab),
                text.as_str().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn footer(tab: &Tab) -> String {
    js(
        tab,
        "document.getElementById('status').innerText.replace(/\\s+/g, ' ').trim()",
    )
    .as_str()
    .unwrap_or_default()
    .to_string()
}

/// The flow inspector's rows: (depth, "Concept.action", sync label).
fn flow_rows(tab: &Tab) -> Vec<(u64, String, String)> {
    let rows = js(
        tab,
        "[...document.querySelectorAll('#flow-tree li')].map(li => [Number(li.dataset.depth), \
         li.dataset.action, (li.querySelector('.sync') || {textContent: ''}).textContent])",
    );
    rows.as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            (
                r[0].as_u64().unwrap_or(99),
                r[1].as_str().unwrap_or_default().to_string(),
                r[2].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// A headless chromium with a profile of its own, never talking to anyone but us; None (with
/// the reason on stderr) when no browser is installed and none is required.
fn launch() -> Option<(Browser, PathBuf, tempfile::TempDir)> {
    let looked = candidates();
    let Some(chromium) = looked.iter().find(|p| p.is_file()).cloned() else {
        let required = std::env::var_os(REQUIRE).is_some_and(|v| !v.is_empty() && v != "0");
        assert!(
            !required,
            "{REQUIRE} is set but no browser was found at {looked:?}; \
             install it with `apt-get install -y chromium`"
        );
        say(&format!(
            "SKIPPED browser test: no browser at {looked:?} (install it with `apt-get install -y chromium`, \
             or set LIBRARYCACHE_BROWSER to its path); set {REQUIRE}=1 to make a missing browser a failure"
        ));
        return None;
    };
    let profile = tempfile::tempdir().expect("profile dir");
    let args: Vec<&OsStr> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
    ]
    .iter()
    .map(OsStr::new)
    .collect();
    let browser = Browser::new(LaunchOptions {
        headless: true,
        sandbox: false,
        enable_gpu: false,
        path: Some(chromium.clone()),
        user_data_dir: Some(profile.path().to_path_buf()),
        window_size: Some((1280, 900)),
        args,
        idle_browser_timeout: Duration::from_secs(120),
        ..LaunchOptions::default()
    })
    .unwrap_or_else(|e| panic!("{} does not start: {e}", chromium.display()));
    Some((browser, chromium, profile))
}

/// A new tab on the page at `base`, once the page has started.
fn open_page(browser: &Browser, base: &str) -> Arc<Tab> {
    let tab = browser.new_tab().expect("tab");
    tab.set_default_timeout(PATIENCE);
    tab.navigate_to(&format!("{base}/"))
        .expect("navigate")
        .wait_until_navigated()
        .expect("page loads");
    wait_for(&tab, "the page's start-up", "document.body.dataset.ready === 'true'");
    tab
}

/// Types `user` into the user field and presses Enter (the user need not have a library).
fn choose_user(tab: &Tab, user: &str) {
    tab.evaluate("document.getElementById('user-input').value = ''", false)
        .expect("clear the user field");
    tab.find_element("#user-input")
        .expect("user field")
        .click()
        .expect("focus the user field");
    tab.type_str(user).expect("type").press_key("Enter").expect("enter");
}

#[test]
fn the_web_page_shows_alice_library_refreshes_through_a_sync_and_shows_its_flow() {
    let started = Instant::now();
    let Some((browser, chromium, _profile)) = launch() else {
        return;
    };

    // The real server, holding the Alice library, ingested over HTTP.
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path(), &[]);
    let r = server.post("/api/LibraryCache/ingest", &alice());
    assert_eq!(r.status, 200, "{}", r.body);

    let tab = open_page(&browser, &server.base);
    assert_eq!(js(&tab, "document.title"), json!("LibraryCache"));

    // Choose user:alice from the list of cached users.
    tab.wait_for_element("button.user[data-user='user:alice']")
        .expect("user:alice is listed")
        .click()
        .expect("click user:alice");
    wait_for(
        &tab,
        "the status footer",
        "/Synced/.test(document.getElementById('status-text').textContent)",
    );
    let text = footer(&tab);
    assert!(
        text.starts_with("3 tracks · 2 liked · Synced ") && text.ends_with(" · Refresh"),
        "footer: {text:?}"
    );
    let synced = text
        .trim_start_matches("3 tracks · 2 liked · Synced ")
        .trim_end_matches(" · Refresh");
    assert!(
        synced == "just now" || synced.ends_with(" ago"),
        "relative sync time {synced:?}"
    );

    // Liked songs in liked order (newest like first) with artist and album.
    wait_for(
        &tab,
        "the liked songs",
        "document.querySelectorAll('#liked tbody tr').length === 2",
    );
    let liked = js(
        &tab,
        "[...document.querySelectorAll('#liked tbody tr')].map(r => [...r.cells].map(c => c.textContent))",
    );
    assert_eq!(
        liked,
        json!([["1", "Bravo", "Ben", "Second"], ["2", "Alpha", "Ana", "First"]])
    );
    assert_eq!(
        js(&tab, "document.getElementById('liked-count').textContent"),
        json!("2 songs")
    );

    // The status came through a request answered by the LibraryStatus sync: its flow is shown.
    wait_for(
        &tab,
        "the status flow",
        "document.getElementById('flow-head').textContent.includes('POST /api/status')",
    );
    assert_eq!(
        flow_rows(&tab),
        [
            (0, "Requesting.request".to_string(), String::new()),
            (1, "Requesting.respond".to_string(), "# LibraryStatus".to_string()),
        ]
    );

    // Open the playlist and see its entries' titles, in order.
    tab.wait_for_element("button.playlist[data-playlist='playlist:1']")
        .expect("playlist Oct25 is listed")
        .click()
        .expect("click the playlist");
    let entries = wait_for(
        &tab,
        "the playlist's entries",
        "document.querySelectorAll('#playlist-entries li').length === 2 && \
         [...document.querySelectorAll('#playlist-entries li')].map(li => li.textContent)",
    );
    assert_eq!(entries, json!(["Bravo — Ben", "Alpha — Ana"]));
    assert_eq!(
        js(&tab, "document.getElementById('playlist-name').textContent"),
        json!("Oct25 · 2 entries")
    );

    // Refresh: a request whose flow runs LibraryCache.touch through a sync, then the new status.
    let before = js(&tab, "document.getElementById('status-text').dataset.version");
    let synced_before = js(&tab, "document.getElementById('status-text').dataset.syncedAt");
    std::thread::sleep(Duration::from_millis(20)); // so the refresh's syncedAt differs
    tab.find_element("#refresh")
        .expect("the Refresh button")
        .click()
        .expect("click Refresh");
    wait_for(
        &tab,
        "the refresh's flow",
        "document.getElementById('flow-head').textContent.includes('POST /api/refresh')",
    );
    wait_for(
        &tab,
        "the footer after the refresh",
        &format!(
            "document.getElementById('status-text').dataset.version !== {before} && \
             document.getElementById('refresh').textContent === 'Refresh'"
        ),
    );
    assert_eq!(footer(&tab), "3 tracks · 2 liked · Synced just now · Refresh");
    assert_ne!(
        js(&tab, "document.getElementById('status-text').dataset.syncedAt"),
        synced_before,
        "syncedAt moved"
    );
    assert_eq!(
        flow_rows(&tab),
        [
            (0, "Requesting.request".to_string(), String::new()),
            (1, "LibraryCache.touch".to_string(), "# Refresh".to_string()),
            (2, "Requesting.respond".to_string(), "# RefreshDone".to_string()),
        ]
    );
    let firings = js(
        &tab,
        "[...document.querySelectorAll('#firings li')].map(li => li.textContent)",
    );
    let firings: Vec<&str> = firings
        .as_array()
        .expect("firings")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(firings.len(), 2, "{firings:?}");
    assert!(firings[0].starts_with("Refresh: matched #"), "{firings:?}");
    assert!(firings[1].starts_with("RefreshDone: matched #"), "{firings:?}");
    assert_eq!(alerts(&tab), json!([]), "no error is shown");

    // The picture of it, for the README.
    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .expect("screenshot");
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("web-alice.png");
    std::fs::write(&shot, &png).expect("write the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");

    // An error is shown in the page, not swallowed: a user with no cached library.
    choose_user(&tab, "user:nobody");
    let shown = wait_for(
        &tab,
        "the error alert",
        "[...document.querySelectorAll('#alerts .alert')].map(a => a.textContent).join('\\n')",
    );
    let shown = shown.as_str().unwrap_or_default();
    assert!(shown.contains("USER_NOT_FOUND"), "{shown}");
    assert!(shown.contains("HTTP 404"), "{shown}");
    wait_for(
        &tab,
        "the footer of an unknown user",
        "document.getElementById('status-text').textContent === 'user:nobody: no cached library'",
    );

    say(&format!(
        "browser test: {} drove the page in {:.1}s; screenshot {}",
        chromium.display(),
        started.elapsed().as_secs_f64(),
        shot.display()
    ));
}

/// The footer names every source the user connected and its last read (Spotify, then Last.fm
/// too), and a user whose first read is still running sees its progress until the library
/// arrives.
#[test]
fn the_footer_shows_each_connected_source_and_the_first_read_progress() {
    let Some((browser, _chromium, _profile)) = launch() else {
        return;
    };
    let spotify = FakeSpotify::start("access-0", "refresh-0");
    spotify.library(|l| {
        for i in 0..3 {
            l.liked.push(Liked {
                track: Some(track(&format!("t{i}"))),
                added_at: format!("2025-01-0{}T00:00:00Z", 3 - i),
            });
        }
    });
    // The first read meets three 503s on each of two endpoints: it runs, retrying, about 7 s.
    spotify.fail("/v1/me/tracks", 503, 3);
    spotify.fail("/v1/me/playlists", 503, 3);
    let lastfm = FakeLastfm::start("lastfm-key");
    lastfm.scrobble("bob-fm", [scrobble(1, 1_735_000_000), scrobble(2, 1_735_000_300)]);
    let data = tempfile::tempdir().expect("tempdir");
    let (api, accounts, fm) = (spotify.api_base(), spotify.accounts_base(), lastfm.api_base());
    let server = Server::start(
        data.path(),
        &[
            "--spotify-api-base",
            &api,
            "--spotify-accounts-base",
            &accounts,
            "--lastfm-api-base",
            &fm,
        ],
    );
    let r = server.post(
        "/api/SpotifySource/connect",
        &json!({"userId": "user:bob", "accessToken": "access-0", "refreshToken": "refresh-0",
                "clientId": "client", "clientSecret": "secret"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let tab = open_page(&browser, &server.base);
    choose_user(&tab, "user:bob");
    wait_for(
        &tab,
        "the first read's progress view",
        "!document.getElementById('first-read').hidden && \
         document.getElementById('first-read-title').textContent",
    );
    assert_eq!(
        js(&tab, "document.getElementById('first-read-title').textContent"),
        json!("Reading the library from Spotify…")
    );
    // The read ends, the view closes and the library is shown with the source's last read.
    wait_for(
        &tab,
        "the library after the first read",
        "document.getElementById('first-read').hidden && \
         /Synced/.test(document.getElementById('status-text').textContent) && \
         /Spotify read/.test(document.getElementById('source-text').textContent)",
    );
    let text = footer(&tab);
    assert!(text.starts_with("3 tracks · 3 liked · Synced "), "footer: {text:?}");
    let read = text.split(" · Spotify read ").nth(1).unwrap_or_default();
    assert!(
        read.starts_with("just now") || read.contains("seconds ago"),
        "footer: {text:?}"
    );
    assert_eq!(
        js(
            &tab,
            "[...document.querySelectorAll('#source-text .source')].map(s => s.dataset.concept)"
        ),
        json!(["SpotifySource"])
    );

    // A second source: Last.fm's plays merge into the same library, and the footer names both.
    let r = server.post(
        "/api/LastfmSource/connect",
        &json!({"userId": "user:bob", "username": "bob-fm", "apiKey": "lastfm-key"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let deadline = Instant::now() + PATIENCE;
    while server
        .post("/api/LastfmSource/_getFetch", &json!({"userId": "user:bob"}))
        .body["phase"]
        != "done"
    {
        assert!(Instant::now() < deadline, "the Last.fm read did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
    choose_user(&tab, "user:bob");
    let parts = wait_for(
        &tab,
        "both sources in the footer",
        "document.querySelectorAll('#source-text .source').length === 2 && \
         [...document.querySelectorAll('#source-text .source')].map(s => s.textContent)",
    );
    let parts: Vec<&str> = parts
        .as_array()
        .expect("parts")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(parts[0].starts_with("Last.fm read "), "{parts:?}");
    assert!(parts[1].starts_with("Spotify read "), "{parts:?}");
    assert_eq!(alerts(&tab), json!([]), "no error is shown");
}
