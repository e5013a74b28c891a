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

/// [`unify_args`] over an object no one else needs (a query's answer row): a field bound to a
/// new variable is moved into the bindings, not copied (a 25,000-id list is bound for free).
/// Each field is taken once: the parser refuses a pattern that names a field twice.
fn unify_args_owned(args: &[Arg<Term>], object: Value, b: &mut Bindings) -> bool {
    let Value::Object(mut fields) = object else {
        return false;
    };
    args.iter().all(|arg| {
        let Some(value) = fields.swap_remove(&arg.name) else {
            return false;
        };
        match &arg.value {
            Term::Var(name, _) if !b.contains_key(name) => {
                b.insert(name.clone(), value);
                true
            }
            term => unify(term, &value, b),
        }
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
    eval_with(e, &mut |name| b.get(name).cloned().unwrap_or(Value::Null))
}

/// The value of an expression, each variable's value given by `var` (which may copy it out of
/// the bindings or take it).
fn eval_with(e: &Expr, var: &mut impl FnMut(&str) -> Value) -> Value {
    match e {
        Expr::Var(name, _) => var(name),
        Expr::Field(base, fields, _) => fields.iter().fold(var(base), |v, f| match v {
            Value::Object(mut m) => m.swap_remove(f).unwrap_or(Value::Null),
            _ => Value::Null,
        }),
        Expr::Lit(v, _) => v.clone(),
        Expr::List(items, _) => Value::Array(items.iter().map(|i| eval_with(i, var)).collect()),
        Expr::Object(entries, _) => {
            Value::Object(entries.iter().map(|(k, v)| (k.clone(), eval_with(v, var))).collect())
        }
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

/// The inputs of a sync's `then` invocations under `b`, in order. A variable's value is moved
/// into the input that uses it last, and copied only into the ones before.
pub fn invocation_inputs(then: &[Invocation], mut b: Bindings) -> Vec<Value> {
    let mut uses: BTreeMap<&str, usize> = BTreeMap::new();
    for arg in then.iter().flat_map(|inv| &inv.args) {
        count_uses(&arg.value, &mut uses);
    }
    then.iter()
        .map(|inv| {
            let mut input = Map::new();
            for arg in &inv.args {
                input.insert(arg.name.clone(), eval_last(&arg.value, &mut b, &mut uses));
            }
            Value::Object(input)
        })
        .collect()
}

/// Counts the variables `e` reads (a field path reads its base).
fn count_uses<'a>(e: &'a Expr, uses: &mut BTreeMap<&'a str, usize>) {
    match e {
        Expr::Var(name, _) | Expr::Field(name, _, _) => *uses.entry(name).or_default() += 1,
        Expr::Lit(..) => {}
        Expr::List(items, _) => items.iter().for_each(|i| count_uses(i, uses)),
        Expr::Object(entries, _) => entries.iter().for_each(|(_, v)| count_uses(v, uses)),
    }
}

/// [`eval`], taking a variable's value out of `b` at its last use (as `uses` counts them).
fn eval_last(e: &Expr, b: &mut Bindings, uses: &mut BTreeMap<&str, usize>) -> Value {
    eval_with(e, &mut |name| {
        let left = uses.get_mut(name).map(|n| {
            *n = n.saturating_sub(1);
            *n
        });
        match left {
            Some(0) => b.remove(name).unwrap_or(Value::Null),
            _ => b.get(name).cloned().unwrap_or(Value::Null),
        }
    })
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
                let mut extended = rows.into_iter().filter_map(|row| {
                    let mut b2 = b.clone();
                    unify_args_owned(&pattern.outputs, row, &mut b2).then_some(b2)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::parse_sync_file;
    use serde_json::json;

    fn sync_of(text: &str) -> Sync {
        let mut file = parse_sync_file("test.sync", text).expect("a valid sync");
        file.syncs.remove(0)
    }

    /// A query's answer row is moved into the bindings and a variable into the last input that
    /// uses it; earlier uses get copies, so every input is whole.
    #[test]
    fn answers_move_into_bindings_and_variables_into_their_last_use() {
        let sync = sync_of(
            "sync S\nwhen\n    A.a (userId) : (request)\nwhere\n    B._q (userId) : (ids, count)\nthen\n    C.c (request, ids, n: count, both: [ids, count])\n    C.d (request, ids, first: count)\n",
        );
        let query = |_: &str, _: &str, input: Value| -> Result<Value, ActionError> {
            assert_eq!(input, json!({"userId": "u"}));
            Ok(json!({"ids": ["t1", "t2"], "count": 2, "extra": true}))
        };
        let start: Bindings = [("userId".to_string(), json!("u")), ("request".to_string(), json!("r"))].into();
        let rows = evaluate_where(&sync, start, &query);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["ids"], json!(["t1", "t2"]));
        let inputs = invocation_inputs(&sync.then, rows.into_iter().next().unwrap());
        assert_eq!(
            inputs,
            vec![
                json!({"request": "r", "ids": ["t1", "t2"], "n": 2, "both": [["t1", "t2"], 2]}),
                json!({"request": "r", "ids": ["t1", "t2"], "first": 2}),
            ]
        );
    }

    /// A bound variable in an answer row is checked, not rebound; a literal is compared; a row
    /// missing a field, or not an object, matches nothing.
    #[test]
    fn owned_rows_check_bound_variables_and_literals() {
        let mut b: Bindings = [("userId".to_string(), json!("u"))].into();
        let args = |text: &str| {
            sync_of(&format!(
                "sync S\nwhen\n    A.a () : ()\nwhere\n    B._q () : ({text})\nthen\n    C.c ()\n"
            ))
        };
        let pattern = |s: &Sync| match &s.where_[0] {
            WhereClause::Query { pattern, .. } => pattern.outputs.clone(),
            _ => unreachable!("a query clause"),
        };
        let checked = args("userId, n");
        assert!(unify_args_owned(
            &pattern(&checked),
            json!({"userId": "u", "n": 1}),
            &mut b
        ));
        assert_eq!(b["n"], json!(1));
        assert!(!unify_args_owned(
            &pattern(&checked),
            json!({"userId": "v", "n": 1}),
            &mut b.clone()
        ));
        let literal = args("n: 3, m");
        let mut b2 = Bindings::new();
        assert!(unify_args_owned(
            &pattern(&literal),
            json!({"n": 3.0, "m": "x"}),
            &mut b2
        ));
        assert_eq!(b2, [("m".to_string(), json!("x"))].into());
        assert!(!unify_args_owned(
            &pattern(&literal),
            json!({"n": 4, "m": "x"}),
            &mut Bindings::new()
        ));
        assert!(!unify_args_owned(
            &pattern(&checked),
            json!(["u", 1]),
            &mut Bindings::new()
        ));
        assert!(!unify_args_owned(
            &pattern(&checked),
            json!({"userId": "u"}),
            &mut Bindings::new()
        ));
    }
}
