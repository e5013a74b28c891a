//! Executable traces (DESIGN §8): a readable list of steps in the notation the engine logs,
//! `Concept.action {input} => {expected}` or `=> error CODE`, run against the real engine.
//! A `"$name"` in an expected output captures that value for later steps' inputs and outputs.

mod parse;
mod run;

pub use parse::{parse_trace, parse_trace_bytes, Expect, Step, TraceError};
pub use run::{json_matches, run_trace, Bindings, StepOutcome, TraceReport};
