//! The canonical text form of sync syntax trees, for logs and error messages. Parsing the printed
//! form gives back the same tree (positions aside) as long as the tree's variable, concept and
//! action names are identifiers that are not keywords, as the parser guarantees.

use std::fmt;

use serde_json::Value;

use super::ast::{ActionPattern, Arg, CmpOp, Expr, Invocation, Pos, Sync, SyncFile, Term, WhereClause};
use super::lexer::is_plain_ident;

const INDENT: &str = "    ";

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

impl fmt::Display for SyncFile {
    /// The file's syncs, separated by blank lines (comments are not kept).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, sync) in self.syncs.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{sync}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Sync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "sync {}", self.name)?;
        writeln!(f, "when")?;
        for pattern in &self.when {
            writeln!(f, "{INDENT}{pattern}")?;
        }
        if !self.where_.is_empty() {
            writeln!(f, "where")?;
            for clause in &self.where_ {
                writeln!(f, "{INDENT}{clause}")?;
            }
        }
        writeln!(f, "then")?;
        for invocation in &self.then {
            writeln!(f, "{INDENT}{invocation}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ActionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{} ", self.concept, self.action)?;
        write_args(f, &self.inputs)?;
        if !self.outputs.is_empty() {
            f.write_str(" : ")?;
            write_args(f, &self.outputs)?;
        }
        Ok(())
    }
}

impl fmt::Display for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{} ", self.concept, self.action)?;
        write_args(f, &self.args)
    }
}

/// What a bare argument `name` stands for: is this value the variable `name`?
trait IsVar {
    fn is_var(&self, name: &str) -> bool;
}

impl IsVar for Term {
    fn is_var(&self, name: &str) -> bool {
        matches!(self, Term::Var(v, _) if v == name)
    }
}

impl IsVar for Expr {
    fn is_var(&self, name: &str) -> bool {
        matches!(self, Expr::Var(v, _) if v == name)
    }
}

fn write_args<V: IsVar + fmt::Display>(f: &mut fmt::Formatter<'_>, args: &[Arg<V>]) -> fmt::Result {
    f.write_str("(")?;
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        if is_plain_ident(&arg.name) && arg.value.is_var(&arg.name) {
            f.write_str(&arg.name)?;
        } else {
            write_key(f, &arg.name)?;
            write!(f, ": {}", arg.value)?;
        }
    }
    f.write_str(")")
}

/// An argument name or object key: bare when it is a plain identifier, else a JSON string.
fn write_key(f: &mut fmt::Formatter<'_>, key: &str) -> fmt::Result {
    if is_plain_ident(key) {
        f.write_str(key)
    } else {
        write!(f, "{}", Value::String(key.to_string()))
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Var(name, _) => f.write_str(name),
            Term::Lit(value, _) => write!(f, "{value}"),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Var(name, _) => f.write_str(name),
            Expr::Field(base, fields, _) => {
                f.write_str(base)?;
                fields.iter().try_for_each(|field| write!(f, ".{field}"))
            }
            Expr::Lit(value, _) => write!(f, "{value}"),
            Expr::List(items, _) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Expr::Object(entries, _) => {
                f.write_str("{")?;
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if is_plain_ident(key) && value.is_var(key) {
                        f.write_str(key)?;
                    } else {
                        write_key(f, key)?;
                        write!(f, ": {value}")?;
                    }
                }
                f.write_str("}")
            }
        }
    }
}

impl fmt::Display for WhereClause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WhereClause::Query { negated, pattern } => {
                if *negated {
                    f.write_str("not ")?;
                }
                write!(f, "{pattern}")
            }
            WhereClause::Compare { lhs, op, rhs } => write!(f, "{lhs} {op} {rhs}"),
            WhereClause::In { var, list, .. } => write!(f, "{var} in {list}"),
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}
