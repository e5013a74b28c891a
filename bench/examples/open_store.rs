//! Times opening a store directory and its first `_getLiked` (a diagnostic for cold starts).
use std::time::Instant;
fn main() {
    let dir = std::env::args().nth(1).expect("a store directory");
    let user = std::env::args().nth(2).unwrap_or_else(|| "user:bench".into());
    let t = Instant::now();
    let db = librarycache::store::SledStore::open(std::path::Path::new(&dir)).expect("open");
    let opened = t.elapsed();
    let engine = librarycache::engine::Engine::new(std::sync::Arc::new(db), librarycache::engine::Registry::standard());
    let built = t.elapsed();
    let out = engine
        .query_output("LibraryCache", "_getLiked", serde_json::json!({"userId": user}))
        .expect("liked");
    let first = t.elapsed();
    println!(
        "open {:?}, engine {:?}, first _getLiked {:?} ({} bytes)",
        opened,
        built - opened,
        first - built,
        out.into_bytes().len()
    );
}
