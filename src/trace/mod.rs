//! Executable traces: a readable list of steps in the notation the engine logs,
//! `Concept.action {input} => {expected}` or `=> error CODE`, run against the real engine on a
//! clock the trace owns (`clock TIME`, `advance DURATION`).
//! A `"$name"` in an expected output captures that value for later steps' inputs and outputs.

mod parse;
mod run;

pub use parse::{parse_trace, parse_trace_bytes, Entry, Expect, Step, TraceError, DEFAULT_CLOCK};
pub use run::{json_matches, run_trace, run_trace_with, trace_clock, Bindings, StepOutcome, TraceReport};
