//! Waiting on a source concept's background read over HTTP (any concept built on the source
//! kit: `_getFetch`, and the read's flow in `GET /api/flows/{flow}`).

use super::server::Server;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A source concept's reads for one user, seen through the real server.
pub struct Reads<'a> {
    pub server: &'a Server,
    /// The concept, e.g. `LastfmSource`.
    pub concept: &'a str,
    pub user: &'a str,
}

impl Reads<'_> {
    /// `POST /api/{concept}/{action}`; panics unless it answers 200.
    pub fn ok(&self, action: &str, body: Value) -> Value {
        let r = self.server.post(&format!("/api/{}/{action}", self.concept), &body);
        assert_eq!(r.status, 200, "{action} {body} answered {} {}", r.status, r.body);
        r.body
    }

    pub fn get_fetch(&self) -> Value {
        self.ok("_getFetch", json!({"userId": self.user}))
    }

    /// Waits until a read other than `after`'s has ended (and, when it is done, until its flow
    /// confirmed it); returns `_getFetch`.
    pub fn wait(&self, after: Option<&Value>) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let f = self.get_fetch();
            let new = f["fetchId"].is_string() && after.map_or(true, |a| f["fetchId"] != a["fetchId"]);
            if new && (f["phase"] == "done" || f["phase"] == "failed") {
                if f["phase"] == "done" {
                    self.wait_confirmed(&f);
                }
                return f;
            }
            assert!(Instant::now() < deadline, "the read did not end: {f}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asks for a read and waits for it to end.
    pub fn again(&self, last: &Value) -> Value {
        let started = self.ok("fetch", json!({"userId": self.user}));
        assert_eq!(started["running"], false, "{started}");
        self.wait(Some(last))
    }

    /// The read's flow (`GET /api/flows/{flow}`).
    pub fn flow(&self, f: &Value) -> Value {
        let id = f["flow"].as_str().expect("flow");
        let r = self
            .server
            .client
            .get(format!("{}/api/flows/{id}", self.server.base))
            .send()
            .expect("flow");
        r.json().unwrap_or(Value::Null)
    }

    fn wait_confirmed(&self, f: &Value) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let report = self.flow(f);
            let confirmed = report["actions"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x["concept"] == self.concept && x["action"] == "confirm")
            });
            if confirmed {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the read's flow never confirmed it: {f}");
    }
}
