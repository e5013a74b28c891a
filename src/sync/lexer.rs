//! Splits sync source text into tokens, each with its 1-based line and column. Comments (`#` to the
//! end of the line) and whitespace are dropped; strings use JSON escapes and numbers JSON syntax.

use std::fmt;

use serde_json::Number;

use super::ast::CmpOp;
use super::error::SyncError;

/// The reserved words of the language.
pub(crate) const KEYWORDS: [&str; 9] = ["sync", "when", "where", "then", "not", "in", "true", "false", "null"];

/// True when `s` can be written bare as a variable, argument name or object key: an identifier
/// (`[A-Za-z_][A-Za-z0-9_]*`) that is not a keyword.
pub(crate) fn is_plain_ident(s: &str) -> bool {
    is_ident_word(s) && !KEYWORDS.contains(&s)
}

/// True when `s` has the shape of an identifier (keywords included).
pub(crate) fn is_ident_word(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if is_ident_start(c)) && chars.all(is_ident_char)
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The value of a number literal already known to have JSON number syntax: an integer when it
/// has no fraction or exponent and fits 64 bits, else the nearest `f64` (std's parser rounds
/// correctly, so printing and re-reading a float gives it back exactly); `None` if infinite.
fn json_number(text: &str) -> Option<Number> {
    if !text.contains(['.', 'e', 'E']) {
        if let Ok(n) = text.parse::<u64>() {
            return Some(Number::from(n));
        }
        if let Ok(n) = text.parse::<i64>() {
            return Some(Number::from(n));
        }
    }
    text.parse::<f64>().ok().and_then(Number::from_f64)
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    /// A reserved word (one of [`KEYWORDS`]).
    Keyword(&'static str),
    Str(String),
    Num(Number),
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Colon,
    Comma,
    Dot,
    Op(CmpOp),
    Eof,
}

impl Tok {
    pub(crate) fn is_keyword(&self, word: &str) -> bool {
        matches!(self, Tok::Keyword(k) if *k == word)
    }
}

impl fmt::Display for Tok {
    /// How a token is named in "found ..." messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(name) => write!(f, "`{name}`"),
            Tok::Keyword(word) => write!(f, "keyword `{word}`"),
            Tok::Str(s) => write!(f, "string {}", serde_json::Value::String(s.clone())),
            Tok::Num(n) => write!(f, "number {n}"),
            Tok::LParen => f.write_str("'('"),
            Tok::RParen => f.write_str("')'"),
            Tok::LBracket => f.write_str("'['"),
            Tok::RBracket => f.write_str("']'"),
            Tok::LBrace => f.write_str("'{'"),
            Tok::RBrace => f.write_str("'}'"),
            Tok::Colon => f.write_str("':'"),
            Tok::Comma => f.write_str("','"),
            Tok::Dot => f.write_str("'.'"),
            Tok::Op(op) => write!(f, "'{}'", op.symbol()),
            Tok::Eof => f.write_str("end of file"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: u32,
    pub col: u32,
}

/// The tokens of `text`, ending with one [`Tok::Eof`]; or every lexical error found.
pub(crate) fn lex(file: &str, text: &str) -> Result<Vec<Token>, Vec<SyncError>> {
    let mut lexer = Lexer {
        file,
        chars: text.chars().collect(),
        i: 0,
        line: 1,
        col: 1,
        tokens: Vec::new(),
        errors: Vec::new(),
    };
    lexer.run();
    if lexer.errors.is_empty() {
        Ok(lexer.tokens)
    } else {
        Err(lexer.errors)
    }
}

struct Lexer<'a> {
    file: &'a str,
    chars: Vec<char>,
    i: usize,
    line: u32,
    col: u32,
    tokens: Vec<Token>,
    errors: Vec<SyncError>,
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.i += 1;
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else {
            self.col = self.col.saturating_add(1);
        }
        Some(c)
    }

    fn error(&mut self, line: u32, col: u32, message: impl Into<String>) {
        self.errors.push(SyncError::new(self.file, line, col, message));
    }

    fn push(&mut self, tok: Tok, line: u32, col: u32) {
        self.tokens.push(Token { tok, line, col });
    }

    fn run(&mut self) {
        while let Some(c) = self.peek(0) {
            let (line, col) = (self.line, self.col);
            if c.is_whitespace() {
                self.bump();
            } else if c == '#' {
                while self.peek(0).is_some_and(|c| c != '\n') {
                    self.bump();
                }
            } else if is_ident_start(c) {
                let mut word = String::new();
                while let Some(c) = self.peek(0).filter(|c| is_ident_char(*c)) {
                    word.push(c);
                    self.bump();
                }
                let tok = match KEYWORDS.iter().find(|k| **k == word) {
                    Some(k) => Tok::Keyword(k),
                    None => Tok::Ident(word),
                };
                self.push(tok, line, col);
            } else if c.is_ascii_digit() || (c == '-' && self.peek(1).is_some_and(|d| d.is_ascii_digit())) {
                self.number(line, col);
            } else if c == '"' {
                self.string(line, col);
            } else if let Some(tok) = self.punct(c) {
                self.push(tok, line, col);
            } else {
                self.unexpected(line, col);
            }
        }
        let (line, col) = (self.line, self.col);
        self.push(Tok::Eof, line, col);
    }

    /// Punctuation and operators; consumes them.
    fn punct(&mut self, c: char) -> Option<Tok> {
        let two = |next: char, tok: Tok| (self.peek(1) == Some(next)).then_some(tok);
        let (tok, len) = match c {
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            '[' => (Tok::LBracket, 1),
            ']' => (Tok::RBracket, 1),
            '{' => (Tok::LBrace, 1),
            '}' => (Tok::RBrace, 1),
            ':' => (Tok::Colon, 1),
            ',' => (Tok::Comma, 1),
            '.' => (Tok::Dot, 1),
            '=' => (two('=', Tok::Op(CmpOp::Eq))?, 2),
            '!' => (two('=', Tok::Op(CmpOp::Ne))?, 2),
            '<' => two('=', Tok::Op(CmpOp::Le)).map_or((Tok::Op(CmpOp::Lt), 1), |t| (t, 2)),
            '>' => two('=', Tok::Op(CmpOp::Ge)).map_or((Tok::Op(CmpOp::Gt), 1), |t| (t, 2)),
            _ => return None,
        };
        for _ in 0..len {
            self.bump();
        }
        Some(tok)
    }

    /// A run of characters that start no token: one error for the whole run.
    fn unexpected(&mut self, line: u32, col: u32) {
        let mut run = String::new();
        while let Some(c) = self.peek(0) {
            let starts_token = c.is_whitespace()
                || c == '#'
                || c == '"'
                || is_ident_start(c)
                || c.is_ascii_digit()
                || "()[]{}:,.<>".contains(c)
                || (c == '=' && self.peek(1) == Some('='))
                || (c == '!' && self.peek(1) == Some('='));
            if starts_token && !run.is_empty() {
                break;
            }
            run.push(c);
            self.bump();
        }
        let shown: String = run.chars().take(20).flat_map(char::escape_debug).collect();
        let hint = match run.as_str() {
            "=" => " (comparisons use '==')",
            "!" => " (use `not` before a query to negate it, or '!=' to compare)",
            "-" => " (a minus sign must be followed by digits)",
            _ => "",
        };
        let what = if run.chars().count() == 1 {
            "character"
        } else {
            "characters"
        };
        self.error(line, col, format!("unexpected {what} `{shown}`{hint}"));
    }

    /// A JSON number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self, line: u32, col: u32) {
        let mut text = String::new();
        let take_digits = |lx: &mut Self, text: &mut String| {
            while let Some(d) = lx.peek(0).filter(char::is_ascii_digit) {
                text.push(d);
                lx.bump();
            }
        };
        if self.peek(0) == Some('-') {
            text.push('-');
            self.bump();
        }
        take_digits(self, &mut text);
        if self.peek(0) == Some('.') && self.peek(1).is_some_and(|d| d.is_ascii_digit()) {
            text.push('.');
            self.bump();
            take_digits(self, &mut text);
        }
        let exp_digits_at = match self.peek(1) {
            Some('+' | '-') => 2,
            _ => 1,
        };
        if matches!(self.peek(0), Some('e' | 'E')) && self.peek(exp_digits_at).is_some_and(|d| d.is_ascii_digit()) {
            for _ in 0..exp_digits_at {
                if let Some(c) = self.bump() {
                    text.push(c);
                }
            }
            take_digits(self, &mut text);
        }
        let digits = text.trim_start_matches('-');
        if digits.len() > 1 && digits.starts_with('0') && digits.as_bytes().get(1).is_some_and(u8::is_ascii_digit) {
            self.error(
                line,
                col,
                format!("invalid number `{text}`: leading zeros are not allowed"),
            );
            return;
        }
        match json_number(&text) {
            Some(n) => self.push(Tok::Num(n), line, col),
            None => self.error(line, col, format!("number `{text}` is out of range")),
        }
    }

    /// A string literal with JSON escapes. On an error, skips to the closing quote or the end of
    /// the line.
    fn string(&mut self, line: u32, col: u32) {
        self.bump(); // the opening quote
        let mut value = String::new();
        let mut bad = false;
        loop {
            let (cl, cc) = (self.line, self.col);
            match self.peek(0) {
                None | Some('\n') => {
                    self.error(
                        line,
                        col,
                        "unterminated string (a string must end on the line it starts)",
                    );
                    return;
                }
                Some('"') => {
                    self.bump();
                    break;
                }
                Some('\\') => {
                    self.bump();
                    match self.escape() {
                        Ok(c) => value.push(c),
                        Err(message) => {
                            if !bad {
                                self.error(cl, cc, message);
                            }
                            bad = true;
                        }
                    }
                }
                Some(c) if (c as u32) < 0x20 => {
                    if !bad {
                        self.error(
                            cl,
                            cc,
                            format!(
                                "control character `{}` in a string; write it as an escape",
                                c.escape_debug()
                            ),
                        );
                    }
                    bad = true;
                    self.bump();
                }
                Some(c) => {
                    value.push(c);
                    self.bump();
                }
            }
        }
        if !bad {
            self.push(Tok::Str(value), line, col);
        }
    }

    /// The character of an escape sequence, the backslash already consumed.
    fn escape(&mut self) -> Result<char, String> {
        let c = match self.peek(0) {
            None | Some('\n') => return Err("unfinished escape sequence at the end of the line".to_string()),
            Some(c) => c,
        };
        self.bump();
        Ok(match c {
            '"' => '"',
            '\\' => '\\',
            '/' => '/',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let unit = self.hex4()?;
                if (0xD800..0xDC00).contains(&unit) {
                    if self.peek(0) != Some('\\') || self.peek(1) != Some('u') {
                        return Err(format!("unpaired surrogate `\\u{unit:04X}` in a string"));
                    }
                    self.bump();
                    self.bump();
                    let low = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(format!("unpaired surrogate `\\u{unit:04X}` in a string"));
                    }
                    let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                    char::from_u32(code).ok_or_else(|| format!("invalid escape `\\u{unit:04X}\\u{low:04X}`"))?
                } else {
                    char::from_u32(unit).ok_or_else(|| format!("unpaired surrogate `\\u{unit:04X}` in a string"))?
                }
            }
            other => {
                return Err(format!(
                    "invalid escape `\\{}` in a string (JSON escapes: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)",
                    other.escape_debug()
                ))
            }
        })
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let mut unit = 0u32;
        for _ in 0..4 {
            match self.peek(0).and_then(|c| c.to_digit(16)) {
                Some(d) => {
                    unit = unit * 16 + d;
                    self.bump();
                }
                None => return Err("`\\u` must be followed by four hexadecimal digits".to_string()),
            }
        }
        Ok(unit)
    }
}
