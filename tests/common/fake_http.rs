//! The part every stand-in for an outside service shares (tests/common/spotify.rs, plex.rs,
//! lastfm.rs): its router served on a free loopback port by a runtime of its own, which stops
//! when the last handle to it is dropped.

use axum::Router;
use std::sync::Arc;

/// A running fake service.
#[derive(Clone)]
pub struct Served {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    _runtime: Arc<tokio::runtime::Runtime>,
}

/// Serves `app` on a free loopback port.
pub fn serve(app: Router) -> Served {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    runtime.spawn(async move { axum::serve(listener, app).await.ok() });
    Served {
        base,
        _runtime: Arc::new(runtime),
    }
}
