//! The parser: turns the text of one `.sync` file into a [`SyncFile`], or reports every syntax
//! error it can find (after an error it skips to the next `sync`). It never panics, and bounds the
//! nesting of lists and objects.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use super::ast::{ActionPattern, Arg, Expr, Invocation, Pos, Sync, SyncFile, Term, WhereClause};
use super::error::SyncError;
use super::lexer::{lex, Tok, Token};
use super::names::duplicate_sync_names;

/// Keywords that start or divide a sync; never offered as names to quote in messages.
const SECTION_KEYWORDS: [&str; 4] = ["sync", "when", "where", "then"];

/// How deeply lists and objects may nest in a `then` argument.
pub const MAX_NESTING: usize = 64;

/// Parses one sync file. `path` is used in positions and error messages.
///
/// Errors are `file:line:col: message`; the parser reports the first error of every `sync` block
/// (and every lexical error), and also sync names defined twice in the file.
pub fn parse_sync_file(path: &str, text: &str) -> Result<SyncFile, Vec<SyncError>> {
    let tokens = lex(path, text)?;
    let mut parser = Parser::new(path, &tokens);
    let mut syncs = Vec::new();
    let mut errors = Vec::new();
    loop {
        let token = parser.peek().clone();
        match &token.tok {
            Tok::Eof => break,
            Tok::Keyword("sync") => match parser.sync() {
                Ok(expanded) => syncs.extend(expanded),
                Err(e) => {
                    errors.push(e);
                    parser.recover();
                }
            },
            other => {
                errors.push(parser.error_at(
                    &token,
                    format!("expected `sync` to start a synchronization, found {other}"),
                ));
                parser.bump();
                parser.recover();
            }
        }
    }
    let file = SyncFile {
        path: path.to_string(),
        syncs,
    };
    errors.extend(duplicate_sync_names(std::slice::from_ref(&file)));
    if errors.is_empty() {
        Ok(file)
    } else {
        Err(errors)
    }
}

type PResult<T> = Result<T, SyncError>;

struct Parser<'t> {
    file: Arc<str>,
    tokens: &'t [Token],
    eof: Token,
    i: usize,
    depth: usize,
}

/// The syncs a `sync Name for Var in Concept, …` template stands for: one per concept, named
/// `{Concept}{Name}`, each with `Var` replaced by the concept wherever a pattern or an
/// invocation names a concept. A template whose body never names `Var` is an error.
fn expand(template: Sync, var: &str, var_pos: &Pos, concepts: &[String]) -> PResult<Vec<Sync>> {
    let names_var = template.when.iter().any(|p| p.concept == var)
        || template.then.iter().any(|i| i.concept == var)
        || template
            .where_
            .iter()
            .any(|w| matches!(w, WhereClause::Query { pattern, .. } if pattern.concept == var));
    if !names_var {
        return Err(var_pos.error(format!(
            "sync {} says `for {var} in …` but never names {var} as a concept (`{var}.action (...)`)",
            template.name
        )));
    }
    Ok(concepts
        .iter()
        .map(|concept| {
            let mut sync = template.clone();
            sync.name = format!("{concept}{}", template.name);
            let put = |name: &mut String| {
                if name == var {
                    *name = concept.clone();
                }
            };
            sync.when.iter_mut().for_each(|p| put(&mut p.concept));
            sync.then.iter_mut().for_each(|i| put(&mut i.concept));
            for clause in &mut sync.where_ {
                if let WhereClause::Query { pattern, .. } = clause {
                    put(&mut pattern.concept);
                }
            }
            sync
        })
        .collect())
}

/// What an argument list belongs to, for messages: "the input pattern of Requesting.request".
struct ArgsCtx {
    what: String,
}

impl<'t> Parser<'t> {
    fn new(path: &str, tokens: &'t [Token]) -> Self {
        let eof = tokens.last().cloned().unwrap_or(Token {
            tok: Tok::Eof,
            line: 1,
            col: 1,
        });
        Parser {
            file: Arc::from(path),
            tokens,
            eof,
            i: 0,
            depth: 0,
        }
    }

    fn peek(&self) -> &Token {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> &Token {
        self.tokens.get(self.i + ahead).unwrap_or(&self.eof)
    }

    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if self.i < self.tokens.len() {
            self.i += 1;
        }
        token
    }

    fn pos_of(&self, token: &Token) -> Pos {
        Pos::new(self.file.clone(), token.line, token.col)
    }

    fn error_at(&self, token: &Token, message: impl Into<String>) -> SyncError {
        self.pos_of(token).error(message)
    }

    /// An error at the next token: "expected {expected}, found {token}".
    fn expected(&self, expected: &str) -> SyncError {
        let token = self.peek();
        self.error_at(token, format!("expected {expected}, found {}", token.tok))
    }

    /// Consumes the next token if it is `tok`.
    fn eat(&mut self, tok: &Tok) -> bool {
        if &self.peek().tok == tok {
            self.bump();
            true
        } else {
            false
        }
    }

    fn at_keyword(&self, word: &str) -> bool {
        self.peek().tok.is_keyword(word)
    }

    /// After an error: skip to the next `sync` (or the end).
    fn recover(&mut self) {
        while !matches!(self.peek().tok, Tok::Eof | Tok::Keyword("sync")) {
            self.bump();
        }
        self.depth = 0;
    }

    fn ident(&mut self, expected: &str) -> PResult<(String, Pos)> {
        match &self.peek().tok {
            Tok::Ident(name) => {
                let name = name.clone();
                let token = self.bump();
                Ok((name, self.pos_of(&token)))
            }
            _ => Err(self.expected(expected)),
        }
    }

    /// `sync Name [for Var in Concept, …] when patterns [where clauses] then invocations`: one
    /// sync, or with `for` one per concept listed, named `{Concept}{Name}`, with `Var` standing
    /// for that concept wherever a concept is named.
    fn sync(&mut self) -> PResult<Vec<Sync>> {
        let sync_token = self.bump();
        let (name, _) = self.ident("a name after `sync`")?;
        let template = match &self.peek().tok {
            Tok::Ident(word) if word == "for" => {
                self.bump();
                Some(self.concept_list(&name)?)
            }
            _ => None,
        };
        let sync = self.sync_body(name, sync_token)?;
        match template {
            None => Ok(vec![sync]),
            Some((var, var_pos, concepts)) => expand(sync, &var, &var_pos, &concepts),
        }
    }

    /// `Var in Concept, Concept, …` after `sync Name for`.
    fn concept_list(&mut self, name: &str) -> PResult<(String, Pos, Vec<String>)> {
        let (var, var_pos) = self.ident(&format!("a name after `sync {name} for`"))?;
        if !self.eat(&Tok::Keyword("in")) {
            return Err(self.expected(&format!("`in` after `sync {name} for {var}`")));
        }
        let mut concepts = vec![self.ident(&format!("a concept name after `for {var} in`"))?.0];
        while self.eat(&Tok::Comma) {
            concepts.push(self.ident(&format!("a concept name after `,` in `for {var} in`"))?.0);
        }
        Ok((var, var_pos, concepts))
    }

    /// A sync's `when`, `where` and `then`, after its name.
    fn sync_body(&mut self, name: String, sync_token: Token) -> PResult<Sync> {
        if !self.eat(&Tok::Keyword("when")) {
            return Err(self.expected(&format!("`when` after `sync {name}`")));
        }
        let mut when = Vec::new();
        loop {
            match &self.peek().tok {
                Tok::Ident(_) if when.is_empty() || self.peek_at(1).tok == Tok::Dot => when.push(self.pattern()?),
                Tok::Keyword("where" | "then") if !when.is_empty() => break,
                _ if when.is_empty() => {
                    return Err(self.expected(&format!(
                        "an action pattern `Concept.action (...)` after `when` in sync {name}"
                    )))
                }
                _ => return Err(self.expected(&format!("another action pattern, `where` or `then` in sync {name}"))),
            }
            self.eat(&Tok::Comma);
        }
        let mut where_ = Vec::new();
        if self.eat(&Tok::Keyword("where")) {
            while !self.at_keyword("then") {
                if matches!(self.peek().tok, Tok::Eof | Tok::Keyword("sync")) {
                    return Err(self.expected(&format!("`then` in sync {name}")));
                }
                where_.push(self.where_clause()?);
                self.eat(&Tok::Comma);
            }
        }
        if !self.eat(&Tok::Keyword("then")) {
            return Err(self.expected(&format!("`where` or `then` in sync {name}")));
        }
        let mut then = Vec::new();
        loop {
            match &self.peek().tok {
                Tok::Ident(_) if then.is_empty() || self.peek_at(1).tok == Tok::Dot => then.push(self.invocation()?),
                Tok::Eof | Tok::Keyword("sync") if !then.is_empty() => break,
                _ if then.is_empty() => {
                    return Err(self.expected(&format!(
                        "an action invocation `Concept.action (...)` after `then` in sync {name}"
                    )))
                }
                _ => {
                    return Err(self.expected(&format!(
                        "another action invocation or the next `sync` after sync {name}"
                    )))
                }
            }
            self.eat(&Tok::Comma);
        }
        Ok(Sync {
            name,
            pos: self.pos_of(&sync_token),
            when,
            where_,
            then,
        })
    }

    /// `Concept.action` — the two names and their positions.
    fn action_name(&mut self) -> PResult<(String, Pos, String, Pos)> {
        let (concept, pos) = self.ident("a concept name")?;
        if !self.eat(&Tok::Dot) {
            return Err(self.expected(&format!("'.' after `{concept}` (write `Concept.action (...)`)")));
        }
        // Action names may be keywords (`LibraryCache.sync`): after the dot they are unambiguous.
        let (action, action_pos) = match &self.peek().tok {
            Tok::Keyword(word) => {
                let word = (*word).to_string();
                let token = self.bump();
                (word, self.pos_of(&token))
            }
            _ => self.ident(&format!("an action name after `{concept}.`"))?,
        };
        Ok((concept, pos, action, action_pos))
    }

    /// `Concept.action (inputs) [: (outputs)]` in `when` and `where`.
    fn pattern(&mut self) -> PResult<ActionPattern> {
        let (concept, pos, action, action_pos) = self.action_name()?;
        let full = format!("{concept}.{action}");
        if !self.eat(&Tok::LParen) {
            return Err(self.expected(&format!("'(' to open the input pattern of {full}")));
        }
        let inputs = self.args(
            &ArgsCtx {
                what: format!("the input pattern of {full}"),
            },
            Self::term,
        )?;
        let mut outputs = Vec::new();
        if self.eat(&Tok::Colon) {
            if !self.eat(&Tok::LParen) {
                return Err(self.expected(&format!("'(' after ':' to open the output pattern of {full}")));
            }
            outputs = self.args(
                &ArgsCtx {
                    what: format!("the output pattern of {full}"),
                },
                Self::term,
            )?;
        }
        Ok(ActionPattern {
            concept,
            action,
            inputs,
            outputs,
            pos,
            action_pos,
        })
    }

    /// `Concept.action (args)` in `then`.
    fn invocation(&mut self) -> PResult<Invocation> {
        let (concept, pos, action, action_pos) = self.action_name()?;
        let full = format!("{concept}.{action}");
        if !self.eat(&Tok::LParen) {
            return Err(self.expected(&format!("'(' to open the arguments of {full}")));
        }
        let args = self.args(
            &ArgsCtx {
                what: format!("the arguments of {full}"),
            },
            Self::expr,
        )?;
        if self.at_keyword("when") || self.at_keyword("where") || self.at_keyword("then") {
            let token = self.peek();
            return Err(self.error_at(token, format!("{} must come before `then`", token.tok)));
        }
        if self.peek().tok == Tok::Colon {
            let token = self.peek();
            return Err(self.error_at(
                token,
                format!("an invocation in `then` has no output pattern: unexpected ':' after the arguments of {full}"),
            ));
        }
        Ok(Invocation {
            concept,
            action,
            args,
            pos,
            action_pos,
        })
    }

    /// The arguments after an opening '(' up to and including the closing ')'.
    fn args<V>(&mut self, ctx: &ArgsCtx, value: fn(&mut Self, &str) -> PResult<V>) -> PResult<Vec<Arg<V>>>
    where
        V: FromVar,
    {
        let mut args: Vec<Arg<V>> = Vec::new();
        let mut seen = HashSet::new();
        loop {
            if self.eat(&Tok::RParen) {
                return Ok(args);
            }
            let token = self.peek().clone();
            let pos = self.pos_of(&token);
            let (name, quoted) = match &token.tok {
                Tok::Ident(name) => (name.clone(), false),
                Tok::Str(name) => (name.clone(), true),
                Tok::Keyword(word) if !SECTION_KEYWORDS.contains(word) => {
                    return Err(self.error_at(
                        &token,
                        format!(
                        "`{word}` is a keyword; write it in quotes (\"{word}\") to use it as an argument name in {}",
                        ctx.what
                    ),
                    ))
                }
                _ => return Err(self.expected(&format!("an argument name or ')' in {}", ctx.what))),
            };
            self.bump();
            if !seen.insert(name.clone()) {
                return Err(pos.error(format!("argument `{name}` appears twice in {}", ctx.what)));
            }
            let value = if self.eat(&Tok::Colon) {
                value(self, &format!("argument `{name}` in {}", ctx.what))?
            } else if quoted {
                return Err(self.expected(&format!(
                    "':' and a value after the quoted argument name {}",
                    Value::String(name)
                )));
            } else {
                V::from_var(name.clone(), pos.clone())
            };
            args.push(Arg { name, value, pos });
            if !self.eat(&Tok::Comma) && self.peek().tok != Tok::RParen {
                return Err(self.expected(&format!("',' or ')' to close {}", ctx.what)));
            }
        }
    }

    /// A literal token as a JSON value, if the next token is one (and consumes it).
    fn literal(&mut self) -> Option<(Value, Pos)> {
        let value = match &self.peek().tok {
            Tok::Str(s) => Value::String(s.clone()),
            Tok::Num(n) => Value::Number(n.clone()),
            Tok::Keyword("true") => Value::Bool(true),
            Tok::Keyword("false") => Value::Bool(false),
            Tok::Keyword("null") => Value::Null,
            _ => return None,
        };
        let token = self.bump();
        Some((value, self.pos_of(&token)))
    }

    /// A value in a `when`/`where` pattern: a variable or a literal.
    fn term(&mut self, what: &str) -> PResult<Term> {
        if let Some((value, pos)) = self.literal() {
            return Ok(Term::Lit(value, pos));
        }
        match &self.peek().tok {
            Tok::Ident(name) => {
                let name = name.clone();
                let token = self.bump();
                if self.peek().tok == Tok::Dot {
                    let dot = self.peek();
                    return Err(self.error_at(dot, format!("field access is not allowed in a pattern ({what}); bind the value to a variable and compare it in `where`")));
                }
                Ok(Term::Var(name, self.pos_of(&token)))
            }
            Tok::LBracket | Tok::LBrace => {
                let token = self.peek();
                Err(self.error_at(
                    token,
                    format!("lists and objects are only allowed in `then` arguments, not in {what}"),
                ))
            }
            _ => Err(self.expected(&format!("a variable or a literal for {what}"))),
        }
    }

    /// A value in `then`, a comparison or an `in` list: a variable, a field access, a literal, or a
    /// list or object of those.
    fn expr(&mut self, what: &str) -> PResult<Expr> {
        if let Some((value, pos)) = self.literal() {
            return Ok(Expr::Lit(value, pos));
        }
        let token = self.peek().clone();
        let pos = self.pos_of(&token);
        match &token.tok {
            Tok::Ident(name) => {
                self.bump();
                let mut fields = Vec::new();
                while self.eat(&Tok::Dot) {
                    match &self.peek().tok {
                        Tok::Ident(field) => fields.push(field.clone()),
                        Tok::Keyword(word) => fields.push((*word).to_string()),
                        _ => return Err(self.expected(&format!("a field name after '.' in {what}"))),
                    }
                    self.bump();
                }
                Ok(if fields.is_empty() {
                    Expr::Var(name.clone(), pos)
                } else {
                    Expr::Field(name.clone(), fields, pos)
                })
            }
            Tok::LBracket => {
                self.enter(&token)?;
                self.bump();
                let mut items = Vec::new();
                while !self.eat(&Tok::RBracket) {
                    items.push(self.expr(&format!("a list item in {what}"))?);
                    if !self.eat(&Tok::Comma) && self.peek().tok != Tok::RBracket {
                        return Err(self.expected(&format!("',' or ']' to close the list in {what}")));
                    }
                }
                self.depth = self.depth.saturating_sub(1);
                Ok(Expr::List(items, pos))
            }
            Tok::LBrace => {
                self.enter(&token)?;
                self.bump();
                let entries = self.object_entries(what)?;
                self.depth = self.depth.saturating_sub(1);
                Ok(Expr::Object(entries, pos))
            }
            _ => Err(self.expected(&format!("a value (variable, literal, list or object) for {what}"))),
        }
    }

    /// One more level of list/object nesting, refused beyond [`MAX_NESTING`].
    fn enter(&mut self, token: &Token) -> PResult<()> {
        if self.depth >= MAX_NESTING {
            return Err(self.error_at(
                token,
                format!("lists and objects nest more than {MAX_NESTING} levels deep"),
            ));
        }
        self.depth += 1;
        Ok(())
    }

    /// The entries of an object after its '{', up to and including the '}'.
    fn object_entries(&mut self, what: &str) -> PResult<Vec<(String, Expr)>> {
        let mut entries: Vec<(String, Expr)> = Vec::new();
        loop {
            if self.eat(&Tok::RBrace) {
                return Ok(entries);
            }
            let token = self.peek().clone();
            let pos = self.pos_of(&token);
            let (key, quoted) = match &token.tok {
                Tok::Ident(key) => (key.clone(), false),
                Tok::Str(key) => (key.clone(), true),
                Tok::Keyword(word) if !SECTION_KEYWORDS.contains(word) => {
                    return Err(self.error_at(
                        &token,
                        format!("`{word}` is a keyword; write it in quotes (\"{word}\") to use it as an object key"),
                    ))
                }
                _ => return Err(self.expected(&format!("an object key or '}}' in {what}"))),
            };
            self.bump();
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(pos.error(format!(
                    "key {} appears twice in an object in {what}",
                    Value::String(key)
                )));
            }
            let value = if self.eat(&Tok::Colon) {
                self.expr(&format!("key `{key}` in {what}"))?
            } else if quoted {
                return Err(self.expected(&format!("':' and a value after the quoted key {}", Value::String(key))));
            } else {
                Expr::Var(key.clone(), pos)
            };
            entries.push((key, value));
            if !self.eat(&Tok::Comma) && self.peek().tok != Tok::RBrace {
                return Err(self.expected(&format!("',' or '}}' to close the object in {what}")));
            }
        }
    }

    /// One clause of `where`: `[not] Concept._query (...) [: (...)]`, `x in list` or `a op b`.
    fn where_clause(&mut self) -> PResult<WhereClause> {
        if self.eat(&Tok::Keyword("not")) {
            if !matches!(self.peek().tok, Tok::Ident(_)) {
                return Err(self.expected("a query pattern `Concept._query (...)` after `not`"));
            }
            return Ok(WhereClause::Query {
                negated: true,
                pattern: self.pattern()?,
            });
        }
        let is_pattern = matches!(self.peek().tok, Tok::Ident(_))
            && self.peek_at(1).tok == Tok::Dot
            && matches!(self.peek_at(2).tok, Tok::Ident(_) | Tok::Keyword(_))
            && self.peek_at(3).tok == Tok::LParen;
        if is_pattern {
            return Ok(WhereClause::Query {
                negated: false,
                pattern: self.pattern()?,
            });
        }
        if let (Tok::Ident(var), true) = (&self.peek().tok, self.peek_at(1).tok.is_keyword("in")) {
            let var = var.clone();
            let token = self.bump();
            self.bump();
            let list = self.expr(&format!("the list of `{var} in ...`"))?;
            return Ok(WhereClause::In {
                var,
                pos: self.pos_of(&token),
                list,
            });
        }
        let lhs = self.expr("a `where` clause (a query pattern, a comparison or `x in list`)")?;
        let op = match self.peek().tok {
            Tok::Op(op) => op,
            _ => {
                // `Concept._query` without its '(' reads as a field access: say what is missing.
                if let Expr::Field(base, fields, _) = &lhs {
                    if let ([query], true) = (fields.as_slice(), base.starts_with(|c: char| c.is_ascii_uppercase())) {
                        return Err(self.expected(&format!("'(' to open the input pattern of {base}.{query}")));
                    }
                }
                return Err(self.expected("a comparison operator (==, !=, <, <=, >, >=)"));
            }
        };
        self.bump();
        let rhs = self.expr(&format!("the right side of '{}'", op.symbol()))?;
        Ok(WhereClause::Compare { lhs, op, rhs })
    }
}

/// How a bare argument `name` turns into a value (`name: name`).
trait FromVar {
    fn from_var(name: String, pos: Pos) -> Self;
}

impl FromVar for Term {
    fn from_var(name: String, pos: Pos) -> Self {
        Term::Var(name, pos)
    }
}

impl FromVar for Expr {
    fn from_var(name: String, pos: Pos) -> Self {
        Expr::Var(name, pos)
    }
}
