//! Parsing trace files.
//!
//! A step starts at a line beginning with `Concept.action`; its input JSON and its expectation
//! may continue over the following lines (so a long ingest can be laid out readably). `#` starts
//! a comment line. Expectations: `=> {json}` (a partial match: object keys not written are not
//! compared, arrays compare whole and in order), `=> error CODE`, or nothing (the step must
//! succeed).

use serde_json::Value;

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

/// Parses a trace file's text.
pub fn parse_trace(file: &str, text: &str) -> Result<Vec<Step>, TraceError> {
    let err = |line: usize, message: String| TraceError {
        file: file.to_string(),
        line,
        message,
    };
    // Group lines into steps.
    let mut groups: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if starts_step(line) {
            groups.push((i + 1, line.to_string()));
        } else if let Some((_, body)) = groups.last_mut() {
            body.push('\n');
            body.push_str(line);
        } else {
            return Err(err(
                i + 1,
                format!("expected a step `Concept.action {{...}}`, found {trimmed:?}"),
            ));
        }
    }
    groups
        .into_iter()
        .map(|(line, body)| parse_step(file, line, &body))
        .collect()
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
    let expect = if after.is_empty() {
        Expect::Success
    } else if let Some(exp) = after.strip_prefix("=>") {
        let exp = exp.trim();
        if let Some(code) = exp.strip_prefix("error") {
            let code = code.trim();
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
            let v: Value = serde_json::from_str(exp)
                .map_err(|e| err(format!("the expected output of {name} is not valid JSON: {e}")))?;
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
    })
}
