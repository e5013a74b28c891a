//! Evaluating syncs: matching `when` patterns against completed actions (a join over one flow),
//! evaluating `where` clauses (queries, `not`, comparisons, `in`) into bindings, and building the
//! inputs of `then` invocations. Pure functions over values; queries are run through a closure
//! so this module never touches the store.

use crate::store::ActionRecord;
use crate::sync::{ActionPattern, Arg, CmpOp, Expr, Invocation, Sync, Term, WhereClause};
use concept_core::ActionError;
use serde::Serialize;
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Variable name → value.
pub type Bindings = BTreeMap<String, Value>;

/// A completed action as syncs see it (and as a flow reports it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Completed {
    /// The action record's id.
    pub id: u64,
    pub concept: String,
    pub action: String,
    /// The input as recorded: arrays of more than 100 items are summarised
    /// (`{"$items": n, "$first": [...]}`), in a live flow as in one read back from the store.
    pub input: Value,
    /// The output, or `{"error", "code"}` for a refusal.
    pub output: Value,
    pub failed: bool,
    /// The sync that fired it, and the actions its `when` matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cause: Vec<u64>,
    /// 0 for the external call, one more per sync in the chain that led here.
    pub depth: u32,
}

impl Completed {
    /// The record of this action in `flow` at `at`, with the input as records keep it.
    pub(crate) fn record(&self, flow: uuid::Uuid, at: chrono::DateTime<chrono::Utc>, input: Value) -> ActionRecord {
        ActionRecord {
            id: self.id,
            flow,
            concept: self.concept.clone(),
            action: self.action.clone(),
            input,
            output: self.output.clone(),
            failed: self.failed,
            at,
            sync: self.sync.clone(),
            cause: self.cause.clone(),
            depth: self.depth,
            events: None,
        }
    }
}

/// A recorded action as syncs see it (read back from the store: a resumed or redelivered flow).
impl From<ActionRecord> for Completed {
    fn from(r: ActionRecord) -> Self {
        Completed {
            id: r.id,
            concept: r.concept,
            action: r.action,
            input: r.input,
            output: r.output,
            failed: r.failed,
            sync: r.sync,
            cause: r.cause,
            depth: r.depth,
        }
    }
}

/// Runs a query for a `where` clause.
pub type QueryFn<'a> = dyn Fn(&str, &str, Value) -> Result<Value, ActionError> + 'a;

/// JSON equality with numbers compared by value (`1` equals `1.0`).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Binds or checks one term against a value.
fn unify(term: &Term, value: &Value, b: &mut Bindings) -> bool {
    match term {
        Term::Lit(lit, _) => same(lit, value),
        Term::Var(name, _) => match b.get(name) {
            Some(bound) => same(bound, value),
            None => {
                b.insert(name.clone(), value.clone());
                true
            }
        },
    }
}

/// Unifies every argument with the field of `object` it names (which must be present).
fn unify_args(args: &[Arg<Term>], object: &Value, b: &mut Bindings) -> bool {
    args.iter().all(|arg| match object.get(&arg.name) {
        Some(value) => unify(&arg.value, value, b),
        None => false,
    })
}

/// Matches one `when` pattern against a completed action, extending `b`.
pub fn match_action(p: &ActionPattern, a: &Completed, b: &Bindings) -> Option<Bindings> {
    if p.concept != a.concept || p.action != a.action || p.matches_errors() != a.failed {
        return None;
    }
    let mut b = b.clone();
    (unify_args(&p.inputs, &a.input, &mut b) && unify_args(&p.outputs, &a.output, &mut b)).then_some(b)
}

/// Every way `sync`'s `when` patterns match actions of `flow` with `trigger` among them: the
/// matched action ids (in pattern order) and the bindings. No action fills two patterns.
pub fn joins(sync: &Sync, trigger: &Completed, flow: &[Completed]) -> Vec<(Vec<u64>, Bindings)> {
    let mut out: Vec<(Vec<u64>, Bindings)> = Vec::new();
    for (i, pattern) in sync.when.iter().enumerate() {
        let Some(b) = match_action(pattern, trigger, &Bindings::new()) else {
            continue;
        };
        let mut ids = vec![0; sync.when.len()];
        ids[i] = trigger.id;
        extend(sync, flow, 0, i, ids, b, &mut out);
    }
    out
}

fn extend(
    sync: &Sync,
    flow: &[Completed],
    j: usize,
    fixed: usize,
    ids: Vec<u64>,
    b: Bindings,
    out: &mut Vec<(Vec<u64>, Bindings)>,
) {
    if j == sync.when.len() {
        if !out.iter().any(|(seen, _)| *seen == ids) {
            out.push((ids, b));
        }
        return;
    }
    if j == fixed {
        return extend(sync, flow, j + 1, fixed, ids, b, out);
    }
    for a in flow {
        if ids.contains(&a.id) {
            continue;
        }
        if let Some(b2) = match_action(&sync.when[j], a, &b) {
            let mut ids2 = ids.clone();
            ids2[j] = a.id;
            extend(sync, flow, j + 1, fixed, ids2, b2, out);
        }
    }
}

/// The value of an expression under `b` (an unbound variable or missing field is `null`).
pub fn eval(e: &Expr, b: &Bindings) -> Value {
    match e {
        Expr::Var(name, _) => b.get(name).cloned().unwrap_or(Value::Null),
        Expr::Field(base, fields, _) => {
            let mut v = b.get(base).cloned().unwrap_or(Value::Null);
            for f in fields {
                v = v.get(f).cloned().unwrap_or(Value::Null);
            }
            v
        }
        Expr::Lit(v, _) => v.clone(),
        Expr::List(items, _) => Value::Array(items.iter().map(|i| eval(i, b)).collect()),
        Expr::Object(entries, _) => Value::Object(entries.iter().map(|(k, v)| (k.clone(), eval(v, b))).collect()),
    }
}

fn compare(op: CmpOp, l: &Value, r: &Value) -> bool {
    let order = match (l, r) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().and_then(|a| b.as_f64().and_then(|b| a.partial_cmp(&b))),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    };
    match op {
        CmpOp::Eq => same(l, r),
        CmpOp::Ne => !same(l, r),
        CmpOp::Lt => order == Some(Ordering::Less),
        CmpOp::Le => matches!(order, Some(Ordering::Less | Ordering::Equal)),
        CmpOp::Gt => order == Some(Ordering::Greater),
        CmpOp::Ge => matches!(order, Some(Ordering::Greater | Ordering::Equal)),
    }
}

/// The input object of a query pattern or a `then` invocation under `b`.
fn input_of_terms(args: &[Arg<Term>], b: &Bindings) -> Value {
    let mut m = Map::new();
    for arg in args {
        let v = match &arg.value {
            Term::Lit(v, _) => v.clone(),
            Term::Var(name, _) => b.get(name).cloned().unwrap_or(Value::Null),
        };
        m.insert(arg.name.clone(), v);
    }
    Value::Object(m)
}

/// The input of a `then` invocation under `b`.
pub fn invocation_input(inv: &Invocation, b: &Bindings) -> Value {
    Value::Object(inv.args.iter().map(|a| (a.name.clone(), eval(&a.value, b))).collect())
}

/// The rows a query pattern yields: the answer (each element, if it is a list) for a pattern
/// matching successes, the refusal `{error, code}` for one naming `error`; and the refusal, if any.
fn query_rows(p: &ActionPattern, b: &Bindings, query: &QueryFn) -> (Vec<Value>, Option<ActionError>) {
    match query(&p.concept, &p.action, input_of_terms(&p.inputs, b)) {
        Ok(v) if !p.matches_errors() => match v {
            Value::Array(rows) => (rows, None),
            row => (vec![row], None),
        },
        Ok(_) => (Vec::new(), None),
        Err(e) if p.matches_errors() => (vec![e.to_output()], Some(e)),
        Err(e) => (Vec::new(), Some(e)),
    }
}

/// What one `where` clause makes of the bindings so far (each may yield none, one or many).
pub fn apply_clause(clause: &WhereClause, bindings: Vec<Bindings>, query: &QueryFn) -> ClauseOutcome {
    let mut out = Vec::new();
    let mut refusals = Vec::new();
    for b in bindings {
        match clause {
            WhereClause::Query { negated, pattern } => {
                let (rows, refusal) = query_rows(pattern, &b, query);
                refusals.extend(refusal);
                let mut extended = rows.iter().filter_map(|row| {
                    let mut b2 = b.clone();
                    unify_args(&pattern.outputs, row, &mut b2).then_some(b2)
                });
                if *negated {
                    if extended.next().is_none() {
                        out.push(b);
                    }
                } else {
                    out.extend(extended);
                }
            }
            WhereClause::Compare { lhs, op, rhs } => {
                if compare(*op, &eval(lhs, &b), &eval(rhs, &b)) {
                    out.push(b);
                }
            }
            WhereClause::In { var, list, .. } => {
                if let Value::Array(items) = eval(list, &b) {
                    for item in items {
                        let mut b2 = b.clone();
                        if unify(&Term::Var(var.clone(), Default::default()), &item, &mut b2) {
                            out.push(b2);
                        }
                    }
                }
            }
        }
    }
    ClauseOutcome {
        bindings: out,
        refusals,
    }
}

pub struct ClauseOutcome {
    pub bindings: Vec<Bindings>,
    /// Refusals of the clause's query that no `error` pattern asked for (for explanations).
    pub refusals: Vec<ActionError>,
}

/// Every binding `where` leaves, starting from the `when` match's.
pub fn evaluate_where(sync: &Sync, start: Bindings, query: &QueryFn) -> Vec<Bindings> {
    let mut bindings = vec![start];
    for clause in &sync.where_ {
        if bindings.is_empty() {
            break;
        }
        bindings = apply_clause(clause, bindings, query).bindings;
    }
    bindings
}
