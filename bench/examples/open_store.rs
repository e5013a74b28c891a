//! Times opening a store directory and its first `_getLiked` (a diagnostic for cold starts):
//! `open_store DIR [USER]`.
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: open_store DIR [USER]")?;
    let user = std::env::args().nth(2).unwrap_or_else(|| "user:bench".into());
    let t = Instant::now();
    let db = librarycache::store::SledStore::open(std::path::Path::new(&dir))?;
    let opened = t.elapsed();
    let engine = librarycache::engine::Engine::new(std::sync::Arc::new(db), librarycache::engine::Registry::standard());
    let built = t.elapsed();
    let out = engine.query_output("LibraryCache", "_getLiked", serde_json::json!({"userId": user}))?;
    let first = t.elapsed();
    println!(
        "open {:?}, engine {:?}, first _getLiked {:?} ({} bytes)",
        opened,
        built - opened,
        first - built,
        out.into_bytes()?.len()
    );
    Ok(())
}
