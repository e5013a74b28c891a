//! Executable traces (DESIGN §8): a readable list of steps in the notation the engine logs,
//! `Concept.action {input} => {expected}` or `=> error CODE`, run against the real engine.

mod parse;
mod run;

pub use parse::{parse_trace, Expect, Step, TraceError};
pub use run::{json_matches, run_trace, StepOutcome, TraceReport};
