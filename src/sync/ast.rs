//! The syntax tree of sync files (`sync Name when ... where ... then ...`), with the source
//! position of every pattern, argument and expression so that later stages can point at them.
//! The canonical text form of these types lives in `display.rs`.

use std::sync::Arc;

use serde_json::Value;

use super::error::SyncError;

/// A place in a sync file: the file's path and a 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: u32,
    pub col: u32,
}

impl Pos {
    pub fn new(file: Arc<str>, line: u32, col: u32) -> Self {
        Pos { file, line, col }
    }

    /// An error located here.
    pub fn error(&self, message: impl Into<String>) -> SyncError {
        SyncError::new(self.file.as_ref(), self.line, self.col, message)
    }
}

impl Default for Pos {
    /// The "nowhere" position (empty file name, line 0, column 0), used for syntax trees built by
    /// hand and by [`SyncFile::erase_positions`].
    fn default() -> Self {
        Pos {
            file: Arc::from(""),
            line: 0,
            col: 0,
        }
    }
}

/// One parsed `.sync` file.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncFile {
    pub path: String,
    pub syncs: Vec<Sync>,
}

/// One synchronization: `sync Name when ... [where ...] then ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sync {
    pub name: String,
    /// Where the `sync` keyword is.
    pub pos: Pos,
    pub when: Vec<ActionPattern>,
    pub where_: Vec<WhereClause>,
    pub then: Vec<Invocation>,
}

/// `Concept.action (inputs) : (outputs)` — a completed action in `when`, or a query in `where`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionPattern {
    pub concept: String,
    pub action: String,
    pub inputs: Vec<Arg<Term>>,
    /// Empty when the pattern has no `: (...)` part.
    pub outputs: Vec<Arg<Term>>,
    /// Where the concept name is.
    pub pos: Pos,
    /// Where the action name is.
    pub action_pos: Pos,
}

impl ActionPattern {
    /// True when the output pattern names `error`: the pattern then matches only failed actions;
    /// otherwise it matches only successful ones.
    pub fn matches_errors(&self) -> bool {
        self.outputs.iter().any(|a| a.name == "error")
    }
}

/// `Concept.action (args)` in `then`.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub concept: String,
    pub action: String,
    pub args: Vec<Arg<Expr>>,
    /// Where the concept name is.
    pub pos: Pos,
    /// Where the action name is.
    pub action_pos: Pos,
}

/// `name: value`, or a bare `name` (which is short for `name: name`).
#[derive(Debug, Clone, PartialEq)]
pub struct Arg<V> {
    pub name: String,
    pub value: V,
    /// Where the argument's name is.
    pub pos: Pos,
}

/// A value in a `when` or `where` pattern: a variable or a literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Var(String, Pos),
    Lit(Value, Pos),
}

impl Term {
    pub fn pos(&self) -> &Pos {
        match self {
            Term::Var(_, pos) | Term::Lit(_, pos) => pos,
        }
    }

    /// The variable this term names, if it is one.
    pub fn var(&self) -> Option<(&str, &Pos)> {
        match self {
            Term::Var(name, pos) => Some((name, pos)),
            Term::Lit(..) => None,
        }
    }
}

/// One clause of `where`.
#[derive(Debug, Clone, PartialEq)]
pub enum WhereClause {
    /// `Concept._query (inputs) : (outputs)`, or with `not` in front: no row matches.
    Query { negated: bool, pattern: ActionPattern },
    /// `lhs op rhs`.
    Compare { lhs: Expr, op: CmpOp, rhs: Expr },
    /// `var in list`: one binding of `var` per element of `list`.
    In { var: String, pos: Pos, list: Expr },
}

/// A comparison operator of `where`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A value in `then` arguments, comparisons and `in` lists.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Var(String, Pos),
    /// `base.field.field...` (at least one field).
    Field(String, Vec<String>, Pos),
    Lit(Value, Pos),
    List(Vec<Expr>, Pos),
    /// `{key: value, ...}` with keys in source order (no duplicates).
    Object(Vec<(String, Expr)>, Pos),
}

impl Expr {
    pub fn pos(&self) -> &Pos {
        match self {
            Expr::Var(_, pos)
            | Expr::Field(_, _, pos)
            | Expr::Lit(_, pos)
            | Expr::List(_, pos)
            | Expr::Object(_, pos) => pos,
        }
    }

    /// Every variable this expression reads (the base of a field access counts), in source order.
    pub fn vars(&self) -> Vec<(&str, &Pos)> {
        let mut out = Vec::new();
        self.collect_vars(&mut out);
        out
    }

    fn collect_vars<'a>(&'a self, out: &mut Vec<(&'a str, &'a Pos)>) {
        match self {
            Expr::Var(name, pos) | Expr::Field(name, _, pos) => out.push((name, pos)),
            Expr::Lit(..) => {}
            Expr::List(items, _) => items.iter().for_each(|e| e.collect_vars(out)),
            Expr::Object(entries, _) => entries.iter().for_each(|(_, e)| e.collect_vars(out)),
        }
    }
}

impl SyncFile {
    /// Replaces every position by [`Pos::default`], so that trees can be compared by structure.
    pub fn erase_positions(&mut self) {
        self.syncs.iter_mut().for_each(Sync::erase_positions);
    }
}

impl Sync {
    /// Replaces every position by [`Pos::default`], so that trees can be compared by structure.
    pub fn erase_positions(&mut self) {
        self.pos = Pos::default();
        self.when.iter_mut().for_each(ActionPattern::erase_positions);
        for clause in &mut self.where_ {
            match clause {
                WhereClause::Query { pattern, .. } => pattern.erase_positions(),
                WhereClause::Compare { lhs, rhs, .. } => {
                    lhs.erase_positions();
                    rhs.erase_positions();
                }
                WhereClause::In { pos, list, .. } => {
                    *pos = Pos::default();
                    list.erase_positions();
                }
            }
        }
        for inv in &mut self.then {
            inv.pos = Pos::default();
            inv.action_pos = Pos::default();
            for arg in &mut inv.args {
                arg.pos = Pos::default();
                arg.value.erase_positions();
            }
        }
    }
}

impl ActionPattern {
    fn erase_positions(&mut self) {
        self.pos = Pos::default();
        self.action_pos = Pos::default();
        for arg in self.inputs.iter_mut().chain(self.outputs.iter_mut()) {
            arg.pos = Pos::default();
            match &mut arg.value {
                Term::Var(_, pos) | Term::Lit(_, pos) => *pos = Pos::default(),
            }
        }
    }
}

impl Expr {
    fn erase_positions(&mut self) {
        match self {
            Expr::Var(_, pos) | Expr::Field(_, _, pos) | Expr::Lit(_, pos) => *pos = Pos::default(),
            Expr::List(items, pos) => {
                *pos = Pos::default();
                items.iter_mut().for_each(Expr::erase_positions);
            }
            Expr::Object(entries, pos) => {
                *pos = Pos::default();
                entries.iter_mut().for_each(|(_, e)| e.erase_positions());
            }
        }
    }
}
