//! The static checker: holds parsed sync files against the concepts' action specs and reports every
//! problem at once — unknown concepts, actions and fields, patterns of the wrong kind, variables
//! used but never bound, literals (and known-typed variables) that do not fit a field's schema, and
//! required inputs missing from `then` invocations.

use std::collections::HashMap;
use std::sync::LazyLock;

use concept_core::{ActionKind, ActionSpec, ConceptSpec};
use serde_json::Value;

use super::ast::{ActionPattern, Arg, Expr, Invocation, Pos, Sync, SyncFile, Term, WhereClause};
use super::error::SyncError;
use super::names::{did_you_mean, duplicate_sync_names};
use super::parse::MAX_NESTING;
use super::schema::{JsonType, Schema, Types};

/// Checks `files` against the specs of `concepts`, returning every problem found (empty when the
/// files are fine), ordered by file (in the order given), line and column.
pub fn check(files: &[SyncFile], concepts: &[ConceptSpec]) -> Vec<SyncError> {
    let mut checker = Checker {
        concepts,
        errors: duplicate_sync_names(files),
    };
    for sync in files.iter().flat_map(|f| &f.syncs) {
        checker.sync(sync);
    }
    let mut errors = checker.errors;
    let file_index = |e: &SyncError| files.iter().position(|f| f.path == e.file).unwrap_or(usize::MAX);
    errors.sort_by_key(|e| (file_index(e), e.line, e.col));
    errors
}

/// The schema of the `error` and `code` outputs every action may answer with.
static STRING_SCHEMA: LazyLock<Value> = LazyLock::new(|| serde_json::json!({ "type": "string" }));

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    When,
    Where,
    Then,
}

/// What is known about a bound variable: the schema of the value it holds (if known) and where
/// that comes from, for messages ("bound by LibraryCache._getLiked output `trackIds`").
struct Binding<'a> {
    schema: Option<Schema<'a>>,
    origin: String,
}

/// The variables of one sync: those bound so far, and where each variable is first bound anywhere
/// in the sync (to tell "used before it is bound" from "never bound").
struct Scope<'a> {
    bound: HashMap<String, Binding<'a>>,
    bound_somewhere: HashMap<String, Pos>,
}

impl<'a> Scope<'a> {
    fn new(sync: &Sync) -> Self {
        let mut bound_somewhere = HashMap::new();
        let mut note = |name: &str, pos: &Pos| {
            bound_somewhere.entry(name.to_string()).or_insert_with(|| pos.clone());
        };
        for pattern in &sync.when {
            pattern
                .inputs
                .iter()
                .chain(&pattern.outputs)
                .filter_map(|a| a.value.var())
                .for_each(|(n, p)| note(n, p));
        }
        for clause in &sync.where_ {
            match clause {
                WhereClause::Query {
                    negated: false,
                    pattern,
                } => {
                    pattern
                        .outputs
                        .iter()
                        .filter_map(|a| a.value.var())
                        .for_each(|(n, p)| note(n, p));
                }
                WhereClause::In { var, pos, .. } => note(var, pos),
                WhereClause::Query { negated: true, .. } | WhereClause::Compare { .. } => {}
            }
        }
        Scope {
            bound: HashMap::new(),
            bound_somewhere,
        }
    }

    /// Binds `name` unless it is bound already (a second occurrence is a join, not a new binding).
    fn bind(&mut self, name: &str, schema: Option<Schema<'a>>, origin: String) {
        self.bound.entry(name.to_string()).or_insert(Binding { schema, origin });
    }
}

struct Checker<'a> {
    concepts: &'a [ConceptSpec],
    errors: Vec<SyncError>,
}

impl<'a> Checker<'a> {
    fn sync(&mut self, sync: &Sync) {
        let mut scope = Scope::new(sync);
        for pattern in &sync.when {
            self.when_pattern(pattern, &mut scope);
        }
        for clause in &sync.where_ {
            match clause {
                WhereClause::Query { negated, pattern } => self.query_pattern(pattern, *negated, &mut scope),
                WhereClause::Compare { lhs, op, rhs } => {
                    self.use_vars(lhs, &scope);
                    self.use_vars(rhs, &scope);
                    if let (Some((lt, ld)), Some((rt, rd))) = (self.type_of(lhs, &scope), self.type_of(rhs, &scope)) {
                        if !lt.overlaps(&rt) {
                            self.errors.push(
                                lhs.pos()
                                    .error(format!("`{lhs} {op} {rhs}` compares {ld} with {rd}, which never match")),
                            );
                        }
                    }
                }
                WhereClause::In { var, list, .. } => {
                    self.use_vars(list, &scope);
                    let list_schema = self.schema_of(list, &scope);
                    if let Some(types) = list_schema.and_then(Schema::types) {
                        if !types.0.contains(&JsonType::Array) {
                            let origin = origin_of(list, &scope);
                            self.errors.push(list.pos().error(format!(
                                "`{var} in {list}` needs a list, but `{list}` is {types}{origin}"
                            )));
                        }
                    }
                    scope.bind(
                        var,
                        list_schema.and_then(Schema::items),
                        format!("bound as an item of `{list}`"),
                    );
                }
            }
        }
        for invocation in &sync.then {
            self.invocation(invocation, &scope);
        }
    }

    // ----- resolving names -------------------------------------------------------------------

    /// The spec of `Concept.action`, reporting an unknown concept or action and an action of the
    /// wrong kind for the section. `None` when the name is unknown.
    fn resolve(
        &mut self,
        concept: &str,
        pos: &Pos,
        action: &str,
        action_pos: &Pos,
        section: Section,
    ) -> Option<&'a ActionSpec> {
        let concepts = self.concepts;
        let Some(spec) = concepts.iter().find(|c| c.name == concept) else {
            let names = || concepts.iter().map(|c| c.name.as_str());
            let hint = match did_you_mean(concept, names()) {
                hint if !hint.is_empty() => hint,
                _ if concepts.is_empty() => " (no concepts are loaded)".to_string(),
                _ => format!(
                    " (known concepts: {}; a concept served elsewhere is declared by a `{concept}.external.json` file in the sync directory or --concepts)",
                    quoted_list(names())
                ),
            };
            self.errors
                .push(pos.error(format!("unknown concept `{concept}`{hint}")));
            return None;
        };
        let wanted = match section {
            Section::Where => "query",
            Section::When | Section::Then => "action",
        };
        let Some(action_spec) = spec.action(action) else {
            let fits = |a: &&ActionSpec| match section {
                Section::When => a.kind != ActionKind::Query,
                Section::Where => a.kind == ActionKind::Query,
                Section::Then => a.kind == ActionKind::Action,
            };
            let hint = match did_you_mean(action, spec.actions.iter().map(|a| a.name.as_str())) {
                hint if !hint.is_empty() => hint,
                _ => {
                    let names: Vec<&str> = spec.actions.iter().filter(fits).map(|a| a.name.as_str()).collect();
                    if names.is_empty() {
                        format!(" ({concept} has no {wanted}s that fit here)")
                    } else {
                        format!(" ({concept}'s {wanted}s: {})", quoted_list(names))
                    }
                }
            };
            self.errors
                .push(action_pos.error(format!("unknown {wanted} `{action}` of {concept}{hint}")));
            return None;
        };
        let full = format!("{concept}.{action}");
        let problem = match (section, action_spec.kind) {
            (Section::When, ActionKind::Query) => Some(format!(
                "`when` matches completed actions, but {full} is a query (queries are not recorded; move it to `where`)"
            )),
            (Section::Where, ActionKind::Action) => Some(format!("`where` takes queries, but {full} is an action")),
            (Section::Where, ActionKind::System) => {
                Some(format!("`where` takes queries, but {full} is a system action"))
            }
            (Section::Then, ActionKind::Query) => Some(format!(
                "`then` invokes actions, but {full} is a query (move it to `where`)"
            )),
            (Section::Then, ActionKind::System) => Some(format!(
                "`then` invokes actions, but {full} is a system action (only its own concept raises it)"
            )),
            _ => None,
        };
        if let Some(message) = problem {
            self.errors.push(action_pos.error(message));
        }
        Some(action_spec)
    }

    /// The schema of input `arg.name` of `spec`, reporting an unknown input. `None` when unknown
    /// (or when the input is open and does not declare it).
    fn input_field<V>(&mut self, spec: &'a ActionSpec, full: &str, arg: &Arg<V>) -> Option<Schema<'a>> {
        let fields = spec.input_fields();
        if fields.contains(&arg.name) {
            return Schema::document(&spec.input).property(&arg.name);
        }
        if !spec.open_input {
            let hint = field_hint(&arg.name, &fields, "inputs");
            self.errors
                .push(arg.pos.error(format!("unknown input `{}` of {full}{hint}", arg.name)));
        }
        None
    }

    /// The schema of output `arg.name` of `spec`, reporting an unknown output. `error` and `code`
    /// are allowed on every action (and are strings).
    fn output_field<V>(&mut self, spec: &'a ActionSpec, full: &str, arg: &Arg<V>) -> Option<Schema<'a>> {
        let fields = spec.output_fields();
        if fields.contains(&arg.name) {
            return Schema::document(&spec.output).property(&arg.name).or_else(|| {
                let is_error = spec.kind != ActionKind::Query && (arg.name == "error" || arg.name == "code");
                is_error.then(|| Schema::document(&STRING_SCHEMA))
            });
        }
        if !spec.open_output {
            let hint = field_hint(&arg.name, &fields, "outputs");
            self.errors
                .push(arg.pos.error(format!("unknown output `{}` of {full}{hint}", arg.name)));
        }
        None
    }

    // ----- the three sections ----------------------------------------------------------------

    fn when_pattern(&mut self, pattern: &ActionPattern, scope: &mut Scope<'a>) {
        let spec = self.resolve(
            &pattern.concept,
            &pattern.pos,
            &pattern.action,
            &pattern.action_pos,
            Section::When,
        );
        let full = format!("{}.{}", pattern.concept, pattern.action);
        for (side, args) in [("input", &pattern.inputs), ("output", &pattern.outputs)] {
            for arg in args {
                let schema = match (spec, side) {
                    (Some(spec), "input") => self.input_field(spec, &full, arg),
                    (Some(spec), _) => self.output_field(spec, &full, arg),
                    (None, _) => None,
                };
                match &arg.value {
                    Term::Lit(value, pos) => self.literal(value, pos, schema, &format!("{full} {side} `{}`", arg.name)),
                    Term::Var(name, _) => scope.bind(name, schema, format!("bound by {full} {side} `{}`", arg.name)),
                }
            }
        }
    }

    fn query_pattern(&mut self, pattern: &ActionPattern, negated: bool, scope: &mut Scope<'a>) {
        let spec = self.resolve(
            &pattern.concept,
            &pattern.pos,
            &pattern.action,
            &pattern.action_pos,
            Section::Where,
        );
        let full = format!("{}.{}", pattern.concept, pattern.action);
        for arg in &pattern.inputs {
            let schema = spec.and_then(|spec| self.input_field(spec, &full, arg));
            let what = format!("{full} input `{}`", arg.name);
            match &arg.value {
                Term::Lit(value, pos) => self.literal(value, pos, schema, &what),
                Term::Var(name, pos) => {
                    if self.use_var(name, pos, scope) {
                        self.fits(&Expr::Var(name.clone(), pos.clone()), schema, &what, scope);
                    }
                }
            }
        }
        for arg in &pattern.outputs {
            let schema = spec.and_then(|spec| self.output_field(spec, &full, arg));
            let what = format!("{full} output `{}`", arg.name);
            match &arg.value {
                Term::Lit(value, pos) => self.literal(value, pos, schema, &what),
                Term::Var(name, pos) if scope.bound.contains_key(name) => {
                    self.fits(&Expr::Var(name.clone(), pos.clone()), schema, &what, scope);
                }
                Term::Var(name, _) if !negated => scope.bind(name, schema, format!("bound by {what}")),
                Term::Var(..) => {}
            }
        }
    }

    fn invocation(&mut self, invocation: &Invocation, scope: &Scope<'a>) {
        let spec = self.resolve(
            &invocation.concept,
            &invocation.pos,
            &invocation.action,
            &invocation.action_pos,
            Section::Then,
        );
        let full = format!("{}.{}", invocation.concept, invocation.action);
        for arg in &invocation.args {
            self.use_vars(&arg.value, scope);
            let schema = spec.and_then(|spec| self.input_field(spec, &full, arg));
            self.fits(&arg.value, schema, &format!("{full} input `{}`", arg.name), scope);
        }
        if let Some(spec) = spec.filter(|s| !s.open_input) {
            for name in Schema::document(&spec.input).required() {
                if !invocation.args.iter().any(|a| a.name == name) {
                    self.errors.push(
                        invocation
                            .pos
                            .error(format!("missing required input `{name}` of {full}")),
                    );
                }
            }
        }
    }

    // ----- variables ---------------------------------------------------------------------------

    /// Reports `name` if it is not bound at this point; true when it is bound.
    fn use_var(&mut self, name: &str, pos: &Pos, scope: &Scope<'a>) -> bool {
        if scope.bound.contains_key(name) {
            return true;
        }
        let message = match scope.bound_somewhere.get(name) {
            Some(at) => format!(
                "variable `{name}` is used before it is bound (it is bound at {at}; `where` clauses bind in order)"
            ),
            None => match did_you_mean(name, scope.bound.keys().map(String::as_str)) {
                hint if !hint.is_empty() => format!("variable `{name}` is never bound{hint}"),
                _ => format!("variable `{name}` is never bound (bind it in `when` or `where`)"),
            },
        };
        self.errors.push(pos.error(message));
        false
    }

    fn use_vars(&mut self, expr: &Expr, scope: &Scope<'a>) {
        for (name, pos) in expr.vars() {
            self.use_var(name, pos, scope);
        }
    }

    /// The schema of the value a variable or field access holds, when known.
    fn schema_of(&self, expr: &Expr, scope: &Scope<'a>) -> Option<Schema<'a>> {
        match expr {
            Expr::Var(name, _) => scope.bound.get(name)?.schema,
            Expr::Field(base, fields, _) => fields
                .iter()
                .try_fold(scope.bound.get(base)?.schema?, |schema, field| schema.property(field)),
            Expr::Lit(..) | Expr::List(..) | Expr::Object(..) => None,
        }
    }

    /// The JSON types an expression can have, when known, with a description of it for messages
    /// ("`trackIds` is an array (bound by ...)").
    fn type_of(&self, expr: &Expr, scope: &Scope<'a>) -> Option<(Types, String)> {
        match expr {
            Expr::Var(name, _) | Expr::Field(name, _, _) => {
                let types = self.schema_of(expr, scope)?.types()?;
                let origin = scope.bound.get(name).map(|b| b.origin.as_str()).unwrap_or_default();
                let desc = format!("`{expr}` ({types}, {origin})");
                Some((types, desc))
            }
            Expr::Lit(value, _) => {
                let types = Types::one(JsonType::of(value));
                let desc = format!("{value} ({types})");
                Some((types, desc))
            }
            Expr::List(..) => Some((Types::one(JsonType::Array), "a list".to_string())),
            Expr::Object(..) => Some((Types::one(JsonType::Object), "an object".to_string())),
        }
    }

    // ----- values against schemas --------------------------------------------------------------

    /// Reports a literal that does not fit `schema` (`what` names the field).
    fn literal(&mut self, value: &Value, pos: &Pos, schema: Option<Schema<'a>>, what: &str) {
        let Some(schema) = schema else { return };
        if let Some(types) = schema.types() {
            if !types.admits(value) {
                self.errors
                    .push(pos.error(format!("{what} expects {types}, found {value}")));
                return;
            }
        }
        if !schema.admits_literal(value) {
            let listed: Vec<String> = schema.listed_values().iter().map(|v| v.to_string()).collect();
            let expected = if listed.is_empty() {
                "another value".to_string()
            } else {
                format!("one of {}", listed.join(", "))
            };
            self.errors
                .push(pos.error(format!("{what} expects {expected}, found {value}")));
        }
    }

    /// Reports a value of schema `source` (the value of `subject`) that can never fit `target`:
    /// their types do not overlap, or (for lists) their items' types do not.
    #[allow(clippy::too_many_arguments)]
    fn schema_fits(
        &mut self,
        source: Schema<'a>,
        target: Schema<'a>,
        what: &str,
        subject: &str,
        origin: &str,
        pos: &Pos,
        depth: usize,
    ) {
        let (Some(expected), Some(actual)) = (target.types(), source.types()) else {
            return;
        };
        if !expected.overlaps(&actual) {
            self.errors
                .push(pos.error(format!("{what} expects {expected}, but {subject} is {actual}{origin}")));
            return;
        }
        let both_lists = expected.0.contains(&JsonType::Array) && actual.0.contains(&JsonType::Array);
        if let (true, true, Some(source_items), Some(target_items)) =
            (both_lists, depth < MAX_NESTING, source.items(), target.items())
        {
            let (what, subject) = (format!("an item of {what}"), format!("an item of {subject}"));
            self.schema_fits(source_items, target_items, &what, &subject, origin, pos, depth + 1);
        }
    }

    /// Reports the parts of a `then` argument (or a query input) that do not fit `schema`.
    fn fits(&mut self, expr: &Expr, schema: Option<Schema<'a>>, what: &str, scope: &Scope<'a>) {
        self.fits_at(expr, schema, what, scope, 0);
    }

    fn fits_at(&mut self, expr: &Expr, schema: Option<Schema<'a>>, what: &str, scope: &Scope<'a>, depth: usize) {
        let Some(schema) = schema else { return };
        if depth > MAX_NESTING {
            return;
        }
        let expected = schema.types();
        match expr {
            Expr::Lit(value, pos) => self.literal(value, pos, Some(schema), what),
            Expr::Var(..) | Expr::Field(..) => {
                if let Some(source) = self.schema_of(expr, scope) {
                    let origin = origin_of(expr, scope);
                    self.schema_fits(source, schema, what, &format!("`{expr}`"), &origin, expr.pos(), 0);
                }
            }
            Expr::List(items, pos) => {
                if let Some(expected) = expected.filter(|t| !t.0.contains(&JsonType::Array)) {
                    self.errors
                        .push(pos.error(format!("{what} expects {expected}, found a list")));
                    return;
                }
                let item_schema = schema.items();
                let item_what = format!("an item of {what}");
                for item in items {
                    self.fits_at(item, item_schema, &item_what, scope, depth + 1);
                }
            }
            Expr::Object(entries, pos) => {
                if let Some(expected) = expected.filter(|t| !t.0.contains(&JsonType::Object)) {
                    self.errors
                        .push(pos.error(format!("{what} expects {expected}, found an object")));
                    return;
                }
                for (key, value) in entries {
                    let field = schema.property(key);
                    if field.is_none() && schema.is_closed() {
                        self.errors
                            .push(value.pos().error(format!("{what} has no field `{key}`")));
                    }
                    self.fits_at(value, field, &format!("field `{key}` of {what}"), scope, depth + 1);
                }
                for name in schema.required() {
                    if !entries.iter().any(|(k, _)| k == name) {
                        self.errors
                            .push(pos.error(format!("missing required field `{name}` in {what}")));
                    }
                }
            }
        }
    }
}

/// " (bound by ...)" for a variable or field access whose binding is known, else nothing.
fn origin_of(expr: &Expr, scope: &Scope<'_>) -> String {
    match expr {
        Expr::Var(name, _) | Expr::Field(name, _, _) => scope
            .bound
            .get(name)
            .map(|b| format!(" ({})", b.origin))
            .unwrap_or_default(),
        Expr::Lit(..) | Expr::List(..) | Expr::Object(..) => String::new(),
    }
}

/// "`a`, `b`, `c`".
fn quoted_list<'s>(names: impl IntoIterator<Item = &'s str>) -> String {
    names
        .into_iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// " (did you mean `x`?)", or the list of valid names, for an unknown field.
fn field_hint(name: &str, fields: &[String], plural: &str) -> String {
    match did_you_mean(name, fields.iter().map(String::as_str)) {
        hint if !hint.is_empty() => hint,
        _ if fields.is_empty() => format!(" (it has no {plural})"),
        _ => format!(" (its {plural}: {})", quoted_list(fields.iter().map(String::as_str))),
    }
}
