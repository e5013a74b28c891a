//! Parsing trace files.
//!
//! A step starts at a line beginning with `Concept.action`; its input JSON and its expectation
//! may continue over the following lines (so a long ingest can be laid out readably). `#` starts
//! a comment line. Expectations: `=> {json}` (a partial match: object keys not written are not
//! compared, arrays compare whole and in order), `=> error CODE`, or nothing (the step must
//! succeed). A `# comment` may follow an expectation.
//!
//! Indented steps under a step are the cascade it must cause: the actions syncs fire in its flow,
//! in the order they complete, each matched by name, by its input (partially, like outputs) and
//! by its expectation — the same lines the engine's trace log prints, so a log pastes in:
//!
//! ```text
//! Requesting.request {"path": "/liked", "userId": "u"} => {"request": "$r"}
//!     Requesting.respond {"request": "$r", "trackIds": ["t:1"]} => {}   # LikedSongs
//! ```
//!
//! A trace can stand in for an external concept (`crate::external`): a line
//! `answer Recommender.recommend {"userId": "alice"} => {"ticket": "rec-1"}` makes every later
//! call of that action whose input matches (partially, like an expected output) answer the
//! output (or `=> error CODE`) instead of calling the service; the latest matching line wins.
//!
//! A trace owns its time. It runs on a clock standing at [`DEFAULT_CLOCK`] until a line
//! `clock 2026-11-21T12:00:00Z` sets it; `advance 25h` moves it forward (durations as
//! everywhere: `500ms`, `90s`, `30m`, `25h`, `7d`). The clock stands still between them, so a
//! trace is a pure function of its text.

use chrono::{DateTime, Utc};
use concept_core::time::{parse_duration, parse_rfc3339};
use serde_json::Value;

/// The time a trace starts at when it does not set its clock.
pub const DEFAULT_CLOCK: &str = "2026-01-01T00:00:00Z";

/// One line of a trace: a step, or a move of its clock.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Step(Box<Step>),
    /// `clock TIME`: the clock stands at `at` from here on.
    SetClock {
        line: usize,
        at: DateTime<Utc>,
    },
    /// `advance DURATION`: the clock moves forward by `by`.
    Advance {
        line: usize,
        by: chrono::Duration,
    },
    /// `answer Concept.action {input} => {output}`: an external concept's answer, given by the
    /// trace (the step's input is the pattern a call must match; its expectation the answer).
    Answer(Box<Step>),
}

/// What a step expects.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// Success, with an output that matches this value.
    Output(Value),
    /// A refusal with this code.
    Error(String),
    /// Success, whatever the output.
    Success,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// 1-based line where the step starts.
    pub line: usize,
    pub concept: String,
    pub action: String,
    pub input: Value,
    pub expect: Expect,
    /// The step as written (first line), for reports.
    pub text: String,
    /// The actions its flow must fire, in order (empty: the cascade is not checked).
    pub cascade: Vec<Step>,
}

/// A trace file that cannot be read, with its place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct TraceError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

fn starts_step(line: &str) -> bool {
    let mut chars = line.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {}
        _ => return false,
    }
    let head: String = line
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
        .collect();
    head.contains('.') && !head.ends_with('.')
}

/// Parses a trace file's bytes as read from disk: bytes that are not UTF-8 are reported at the
/// line of the first bad one (`file:line: the file is not valid UTF-8 (byte 0x..)`).
pub fn parse_trace_bytes(file: &str, bytes: &[u8]) -> Result<Vec<Entry>, TraceError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_trace(file, text),
        Err(e) => {
            let good = e.valid_up_to();
            let line = bytes[..good].iter().filter(|b| **b == b'\n').count() + 1;
            let byte = bytes
                .get(good)
                .map(|b| format!(" (byte 0x{b:02x})"))
                .unwrap_or_default();
            Err(TraceError {
                file: file.to_string(),
                line,
                message: format!("the file is not valid UTF-8{byte}"),
            })
        }
    }
}

/// Parses a trace file's text.
pub fn parse_trace(file: &str, text: &str) -> Result<Vec<Entry>, TraceError> {
    let err = |line: usize, message: String| TraceError {
        file: file.to_string(),
        line,
        message,
    };
    // Group lines into steps, and indented steps into their step's cascade.
    enum Group {
        Step {
            line: usize,
            body: String,
            cascade: Vec<(usize, String)>,
            answer: bool,
        },
        Clock(Entry),
    }
    let mut groups: Vec<Group> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(entry) = clock_line(trimmed, i + 1).map_err(|m| err(i + 1, m))? {
            if trimmed.len() != line.len() {
                return Err(err(
                    i + 1,
                    format!("`{}` moves the trace's clock and is not indented", first_word(trimmed)),
                ));
            }
            groups.push(Group::Clock(entry));
            continue;
        }
        if let Some(rest) = line.strip_prefix("answer ") {
            groups.push(Group::Step {
                line: i + 1,
                body: rest.trim_start().to_string(),
                cascade: Vec::new(),
                answer: true,
            });
            continue;
        }
        if starts_step(line) {
            groups.push(Group::Step {
                line: i + 1,
                body: line.to_string(),
                cascade: Vec::new(),
                answer: false,
            });
            continue;
        }
        let Some(Group::Step { body, cascade, .. }) = groups.last_mut() else {
            return Err(err(
                i + 1,
                format!("expected a step `Concept.action {{...}}`, found {trimmed:?}"),
            ));
        };
        if starts_step(trimmed) {
            cascade.push((i + 1, trimmed.to_string()));
            continue;
        }
        let body = match cascade.last_mut() {
            Some((_, body)) => body,
            None => body,
        };
        body.push('\n');
        body.push_str(line);
    }
    groups
        .into_iter()
        .map(|g| match g {
            Group::Clock(entry) => Ok(entry),
            Group::Step {
                line,
                body,
                cascade,
                answer: true,
            } => {
                if let Some((at, _)) = cascade.first() {
                    return Err(err(*at, "an `answer` line has no cascade".into()));
                }
                Ok(Entry::Answer(Box::new(parse_step(file, line, &body)?)))
            }
            Group::Step {
                line, body, cascade, ..
            } => {
                let mut step = parse_step(file, line, &body)?;
                step.cascade = cascade
                    .iter()
                    .map(|(line, body)| parse_step(file, *line, body))
                    .collect::<Result<_, _>>()?;
                Ok(Entry::Step(Box::new(step)))
            }
        })
        .collect()
}

fn first_word(line: &str) -> &str {
    line.split_whitespace().next().unwrap_or_default()
}

/// A `clock TIME` or `advance DURATION` line (None: the line is something else).
fn clock_line(line: &str, at: usize) -> Result<Option<Entry>, String> {
    let word = first_word(line);
    if word != "clock" && word != "advance" {
        return Ok(None);
    }
    let arg = strip_comment(line[word.len()..].trim());
    if word == "clock" {
        let t = parse_rfc3339(arg)
            .ok_or_else(|| format!("`clock` needs an RFC 3339 time such as 2026-11-21T12:00:00Z, found {arg:?}"))?;
        Ok(Some(Entry::SetClock { line: at, at: t }))
    } else {
        let by = parse_duration(arg).map_err(|e| format!("`advance` needs a duration such as 25h: {e}"))?;
        Ok(Some(Entry::Advance { line: at, by }))
    }
}

/// `text` without a trailing `# comment` (outside JSON strings: call it on what follows JSON).
fn strip_comment(text: &str) -> &str {
    text.split_once('#').map_or(text, |(before, _)| before).trim()
}

fn parse_step(file: &str, line: usize, body: &str) -> Result<Step, TraceError> {
    let err = |message: String| TraceError {
        file: file.to_string(),
        line,
        message,
    };
    let name_end = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(body.len());
    let name = &body[..name_end];
    let (concept, action) = name
        .split_once('.')
        .ok_or_else(|| err(format!("a step starts with Concept.action, not {name:?}")))?;
    let rest = body[name_end..].trim_start();
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
    let input = match stream.next() {
        Some(Ok(v @ Value::Object(_))) => v,
        Some(Ok(_)) => return Err(err(format!("the input of {name} must be a JSON object"))),
        Some(Err(e)) => return Err(err(format!("the input of {name} is not valid JSON: {e}"))),
        None => return Err(err(format!("{name} has no input; write {{}} for an empty one"))),
    };
    let after = rest[stream.byte_offset()..].trim();
    let expect = if after.is_empty() || after.starts_with('#') {
        Expect::Success
    } else if let Some(exp) = after.strip_prefix("=>") {
        let exp = exp.trim();
        if let Some(code) = exp.strip_prefix("error") {
            let code = strip_comment(code);
            if code.is_empty()
                || !code
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(err(format!(
                    "`=> error` must name a code such as USER_NOT_FOUND, found {code:?}"
                )));
            }
            Expect::Error(code.to_string())
        } else {
            let mut stream = serde_json::Deserializer::from_str(exp).into_iter::<Value>();
            let v = match stream.next() {
                Some(Ok(v)) => v,
                Some(Err(e)) => return Err(err(format!("the expected output of {name} is not valid JSON: {e}"))),
                None => {
                    return Err(err(format!(
                        "`=>` after {name} needs an expected output or `error CODE`"
                    )))
                }
            };
            let trailing = exp[stream.byte_offset()..].trim();
            if !(trailing.is_empty() || trailing.starts_with('#')) {
                return Err(err(format!(
                    "after the expected output of {name} expected the end of the step or a # comment, found {trailing:?}"
                )));
            }
            Expect::Output(v)
        }
    } else {
        return Err(err(format!(
            "after the input of {name} expected `=>` or the end of the step, found {after:?}"
        )));
    };
    Ok(Step {
        line,
        concept: concept.to_string(),
        action: action.to_string(),
        input,
        expect,
        text: body.lines().next().unwrap_or_default().chars().take(200).collect(),
        cascade: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_lines_parse_as_an_external_concepts_answers() {
        let entries = parse_trace(
            "t.trace",
            "answer R.act {\"u\": \"a\"}\n    => {\"ticket\": \"x\"}\nanswer R._q {} => error BUSY\nR.cb {}\n",
        )
        .expect("parses");
        let [Entry::Answer(given), Entry::Answer(refused), Entry::Step(step)] = &entries[..] else {
            panic!("{entries:?}");
        };
        assert_eq!((given.concept.as_str(), given.action.as_str()), ("R", "act"));
        assert_eq!(given.expect, Expect::Output(serde_json::json!({"ticket": "x"})));
        assert_eq!(refused.expect, Expect::Error("BUSY".into()));
        assert_eq!(step.action, "cb");
        let e = parse_trace("t.trace", "answer R.act {}\n    R.other {}\n").expect_err("no cascade");
        assert_eq!((e.line, e.message.as_str()), (2, "an `answer` line has no cascade"));
    }
}
