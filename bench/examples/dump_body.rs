fn main() {
    let w = librarycache_bench::Workload::large(42);
    let body = w.ingest_bytes(librarycache_bench::runner::USER).expect("body");
    std::fs::write("/tmp/ingest.json", &body).expect("write");
}
