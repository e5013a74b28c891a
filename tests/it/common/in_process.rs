//! The service in this process, on a clock the test moves: the real engine over a real sled
//! store, the default syncs, every concept's background work, and the real router served on a
//! loopback port — everything `serve` runs but the process and the system clock. A test that
//! must move the service's time (a rate limit's `retryAt`, a wait inside a read) runs the
//! service like this: it talks to it over HTTP as to the binary, and sets the clock.

use super::server::{client, send, Reply};
use librarycache::app::Sources;
use librarycache::engine::{Engine, Registry};
use librarycache::server::{router, AppState};
use librarycache::store::SledStore;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

pub struct InProcess {
    pub base: String,
    pub engine: Arc<Engine>,
    pub clock: Arc<concept_core::ManualClock>,
    pub client: reqwest::blocking::Client,
    // Dropped last: the runtime stops the server and the background work, then the store goes.
    runtime: Option<tokio::runtime::Runtime>,
}

impl InProcess {
    /// Starts the service over the store in `data` (created if missing), its sources reading as
    /// `sources` says, on `clock`.
    pub fn start(data: &Path, sources: Sources, clock: &Arc<concept_core::ManualClock>) -> InProcess {
        let store = Arc::new(SledStore::open(data).expect("open store"));
        let engine = Arc::new(
            Engine::new(store, Registry::configured(sources))
                .with_clock(Arc::clone(clock) as concept_core::SharedClock)
                .with_syncs(super::shipped_syncs()),
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        for (_, work) in engine.background() {
            runtime.spawn(work);
        }
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let app = router(AppState::new(Arc::clone(&engine)));
        runtime.spawn(async move { axum::serve(listener, app).await.ok() });
        InProcess {
            base,
            engine,
            clock: Arc::clone(clock),
            client: client(),
            runtime: Some(runtime),
        }
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        send(&self.client, &self.base, path, body.to_string().into_bytes(), None).expect("request")
    }

    /// `POST /api/{path}`, which must answer 200: its body.
    pub fn ok(&self, path: &str, body: Value) -> Value {
        let r = self.post(path, &body);
        assert_eq!(r.status, 200, "{path} {body} answered {} {}", r.status, r.body);
        r.body
    }

    /// The time on the service's clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        use concept_core::Clock;
        self.clock.now()
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
        }
    }
}
