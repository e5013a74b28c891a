//! Running a trace against an engine and reporting each step's actual outcome.

use super::parse::{Entry, DEFAULT_CLOCK};
use super::{Expect, Step};
use crate::engine::{Completed, Engine};
use concept_core::{Clock, ManualClock};
use serde_json::Value;
use std::collections::BTreeMap;

/// Values captured by `"$name"` in expected outputs, substituted for `"$name"` in later inputs
/// (so a trace can say "the version that sync answered with" without hard-coding it).
pub type Bindings = BTreeMap<String, Value>;

/// The variable a string names, if it is exactly `$name` (letters, digits, `_`).
fn variable(s: &str) -> Option<&str> {
    let name = s.strip_prefix('$')?;
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    (first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some(name)
}

/// `input` with every bound `"$name"` replaced by its value; an unbound one is an error.
fn substitute(input: &Value, bindings: &Bindings) -> Result<Value, String> {
    Ok(match input {
        Value::String(s) => match variable(s) {
            Some(name) => bindings
                .get(name)
                .cloned()
                .ok_or_else(|| format!("${name} is used before a step's output bound it"))?,
            None => input.clone(),
        },
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| substitute(v, bindings))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), substitute(v, bindings)?)))
                .collect::<Result<_, String>>()?,
        ),
        _ => input.clone(),
    })
}

/// What one step did.
#[derive(Debug, Clone)]
pub struct StepOutcome {
    pub step: Step,
    /// The output, or `{"error", "code"}` for a refusal.
    pub actual: Value,
    pub failed: bool,
    /// What syncs fired in its flow.
    pub cascade: Vec<Completed>,
    /// Why the step does not meet its expectation, if it does not.
    pub mismatch: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct TraceReport {
    pub file: String,
    pub steps: Vec<StepOutcome>,
}

impl TraceReport {
    pub fn passed(&self) -> bool {
        self.steps.iter().all(|s| s.mismatch.is_none())
    }

    /// Every mismatch as `file:line: step / expected / actual`.
    pub fn failures(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter_map(|s| {
                s.mismatch.as_ref().map(|why| {
                    format!(
                        "{}:{}: {}\n  step:     {}\n  expected: {}\n  actual:   {}",
                        self.file,
                        s.step.line,
                        why,
                        s.step.text,
                        describe(&s.step.expect),
                        s.actual
                    )
                })
            })
            .collect()
    }
}

fn describe(expect: &Expect) -> String {
    match expect {
        Expect::Output(v) => v.to_string(),
        Expect::Error(code) => format!("error {code}"),
        Expect::Success => "success".to_string(),
    }
}

/// The clock a trace runs on: give it to the engine (`Engine::with_clock`) and to
/// [`run_trace`], which sets it to [`DEFAULT_CLOCK`] first and moves it as the trace says.
pub fn trace_clock() -> ManualClock {
    ManualClock::at(concept_core::time::parse_rfc3339(DEFAULT_CLOCK).unwrap_or_default())
}

/// Runs every step in order (later steps run even after a mismatch, so one run shows all), on
/// `clock`, which must be `engine`'s.
pub fn run_trace(engine: &Engine, clock: &ManualClock, file: &str, entries: &[Entry]) -> TraceReport {
    run_trace_with(engine, clock, file, entries, None)
}

/// [`run_trace`] with the engine's external concepts answering from `stand_in`, which the
/// trace's `answer` lines fill (without one, an `answer` line is a failed step).
pub fn run_trace_with(
    engine: &Engine,
    clock: &ManualClock,
    file: &str,
    entries: &[Entry],
    stand_in: Option<&crate::external::StandIn>,
) -> TraceReport {
    let mut report = TraceReport {
        file: file.to_string(),
        steps: Vec::new(),
    };
    let mut bindings = Bindings::new();
    clock.set(trace_clock().now());
    for entry in entries {
        let step = match entry {
            Entry::Step(step) => step.as_ref(),
            Entry::SetClock { at, .. } => {
                clock.set(*at);
                continue;
            }
            Entry::Advance { by, .. } => {
                clock.advance(*by);
                continue;
            }
            Entry::Answer(step) => {
                let given = substitute(&step.input, &bindings).and_then(|pattern| {
                    let answer = match &step.expect {
                        Expect::Output(v) => Ok(substitute(v, &bindings)?),
                        Expect::Success => Ok(Value::Object(Default::default())),
                        Expect::Error(code) => Err(code.clone()),
                    };
                    let stand_in = stand_in
                        .ok_or_else(|| "this trace runs without external concepts to answer for".to_string())?;
                    stand_in.give(&step.concept, &step.action, pattern, answer);
                    Ok(())
                });
                if let Err(why) = given {
                    report.steps.push(StepOutcome {
                        step: step.as_ref().clone(),
                        actual: Value::Null,
                        failed: true,
                        cascade: Vec::new(),
                        mismatch: Some(why),
                    });
                }
                continue;
            }
        };
        let input = match substitute(&step.input, &bindings) {
            Ok(input) => input,
            Err(why) => {
                report.steps.push(StepOutcome {
                    step: step.clone(),
                    actual: Value::Null,
                    failed: true,
                    cascade: Vec::new(),
                    mismatch: Some(why),
                });
                continue;
            }
        };
        let answer = engine.invoke(&step.concept, &step.action, input);
        let (actual, failed, code) = match &answer.result {
            Ok(v) => (v.clone(), false, None),
            Err(e) => (e.to_output(), true, Some(e.code.clone())),
        };
        let mut mismatch = expectation_met(&step.expect, &actual, code.as_deref(), &mut bindings).err();
        if mismatch.is_none() {
            if let Some(e) = &answer.flow_error {
                mismatch = Some(format!("the flow stopped: {} ({})", e.message, e.code));
            }
        }
        if mismatch.is_none() && !step.cascade.is_empty() {
            mismatch = cascade_matches(&step.cascade, answer.cascade(), &mut bindings).err();
        }
        report.steps.push(StepOutcome {
            step: step.clone(),
            actual,
            failed,
            cascade: answer.cascade().to_vec(),
            mismatch,
        });
    }
    report
}

/// Whether an outcome (an output, or a refusal with `code`) meets an expectation.
fn expectation_met(expect: &Expect, actual: &Value, code: Option<&str>, bindings: &mut Bindings) -> Result<(), String> {
    match (expect, code) {
        (Expect::Error(want), Some(code)) if code == want => Ok(()),
        (Expect::Error(want), Some(code)) => Err(format!("refused with {code}, not {want}")),
        (Expect::Error(want), None) => Err(format!("succeeded, but error {want} was expected")),
        (_, Some(code)) => Err(format!("refused ({code}), but success was expected")),
        (Expect::Success, None) => Ok(()),
        (Expect::Output(want), None) => json_matches(want, actual, "", bindings),
    }
}

/// Whether the fired actions are the expected cascade: same length, and each by name, input
/// (partially) and expectation.
fn cascade_matches(expected: &[Step], fired: &[Completed], bindings: &mut Bindings) -> Result<(), String> {
    let names = |c: &Completed| format!("{}.{}", c.concept, c.action);
    for (i, want) in expected.iter().enumerate() {
        let Some(got) = fired.get(i) else {
            return Err(format!(
                "line {}: expected {}.{} as fired action {} of the flow, but only {} fired: [{}]",
                want.line,
                want.concept,
                want.action,
                i + 1,
                fired.len(),
                fired.iter().map(names).collect::<Vec<_>>().join(", ")
            ));
        };
        let here = |why: String| format!("line {}: fired action {} ({}): {why}", want.line, i + 1, names(got));
        if got.concept != want.concept || got.action != want.action {
            return Err(here(format!("expected {}.{}", want.concept, want.action)));
        }
        json_matches(&want.input, &got.input, "input", bindings).map_err(here)?;
        let code = got
            .failed
            .then(|| got.output["code"].as_str().unwrap_or_default().to_string());
        expectation_met(&want.expect, &got.output, code.as_deref(), bindings).map_err(here)?;
    }
    if fired.len() > expected.len() {
        return Err(format!(
            "{} actions fired, {} expected; the first unexpected one: {} {}",
            fired.len(),
            expected.len(),
            names(&fired[expected.len()]),
            fired[expected.len()].input
        ));
    }
    Ok(())
}

/// Whether `actual` matches `expected`: objects partially (keys not written are not compared),
/// arrays whole and in order, scalars exactly; `"$name"` matches anything the first time (and
/// binds it) and the bound value after. The error names the first differing path.
pub fn json_matches(expected: &Value, actual: &Value, path: &str, bindings: &mut Bindings) -> Result<(), String> {
    let here = if path.is_empty() {
        "the output".to_string()
    } else {
        format!("`{path}`")
    };
    if let Some(name) = expected.as_str().and_then(variable) {
        return match bindings.get(name) {
            Some(bound) if bound == actual => Ok(()),
            Some(bound) => Err(format!("{here} is {actual}, not ${name} = {bound}")),
            None => {
                bindings.insert(name.to_string(), actual.clone());
                Ok(())
            }
        };
    }
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => {
            for (k, v) in want {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match have.get(k) {
                    Some(a) => json_matches(v, a, &sub, bindings)?,
                    None => return Err(format!("`{sub}` is missing")),
                }
            }
            Ok(())
        }
        (Value::Array(want), Value::Array(have)) => {
            if want.len() != have.len() {
                return Err(format!("{here} has {} items, not {}", have.len(), want.len()));
            }
            for (i, (w, a)) in want.iter().zip(have).enumerate() {
                json_matches(w, a, &format!("{path}[{i}]"), bindings)?;
            }
            Ok(())
        }
        (Value::Number(w), Value::Number(a)) if w.as_f64() == a.as_f64() => Ok(()),
        (w, a) if w == a => Ok(()),
        (w, a) => Err(format!("{here} is {a}, not {w}")),
    }
}
