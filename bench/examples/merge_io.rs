//! Diagnostic: merges of 10 likes on an existing store, with the bytes each writes:
//! `merge_io DIR [N]`.
use std::time::Instant;

fn written() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: merge_io DIR [N]")?;
    let n: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let db = librarycache::store::SledStore::open(std::path::Path::new(&dir))?;
    let engine = librarycache::engine::Engine::new(std::sync::Arc::new(db), librarycache::engine::Registry::standard());
    for i in 0..n {
        let likes: Vec<serde_json::Value> = (0..10).map(|j| serde_json::json!({"trackId": format!("spotify:track:merge{i:04}{j:02}"), "likedAt": format!("2030-01-01T00:{:02}:{:02}Z", i % 60, j)})).collect();
        let body = serde_json::json!({"userId": "user:bench", "likes": likes});
        let (w, t) = (written(), Instant::now());
        engine.invoke("LibraryCache", "merge", body).result?;
        println!(
            "merge {i}: {:.3} ms, {} bytes written",
            t.elapsed().as_secs_f64() * 1e3,
            written() - w
        );
    }
    Ok(())
}
