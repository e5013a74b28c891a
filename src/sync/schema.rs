//! Just enough JSON Schema reading (as schemars 1.x writes it) to type-check sync files: which JSON
//! types a schema admits, its enumerated values, and the schemas of its properties and items.
//! `$ref`s are resolved within the same schema document; anything not understood admits anything.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

/// How many `$ref`/combinator levels are followed before giving up (and admitting anything).
const MAX_DEPTH: usize = 32;

/// A schema node together with the document its `$ref`s point into.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schema<'a> {
    pub node: &'a Value,
    pub root: &'a Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum JsonType {
    String,
    Integer,
    Number,
    Boolean,
    Array,
    Object,
    Null,
}

impl JsonType {
    fn from_name(name: &str) -> Option<JsonType> {
        Some(match name {
            "string" => JsonType::String,
            "integer" => JsonType::Integer,
            "number" => JsonType::Number,
            "boolean" => JsonType::Boolean,
            "array" => JsonType::Array,
            "object" => JsonType::Object,
            "null" => JsonType::Null,
            _ => return None,
        })
    }

    /// The type of a JSON value; numbers without a fraction or exponent part are integers.
    pub(crate) fn of(value: &Value) -> JsonType {
        match value {
            Value::Null => JsonType::Null,
            Value::Bool(_) => JsonType::Boolean,
            Value::Number(n) if n.is_i64() || n.is_u64() => JsonType::Integer,
            Value::Number(_) => JsonType::Number,
            Value::String(_) => JsonType::String,
            Value::Array(_) => JsonType::Array,
            Value::Object(_) => JsonType::Object,
        }
    }

    fn article(self) -> &'static str {
        match self {
            JsonType::String => "a string",
            JsonType::Integer => "an integer",
            JsonType::Number => "a number",
            JsonType::Boolean => "a boolean",
            JsonType::Array => "an array",
            JsonType::Object => "an object",
            JsonType::Null => "null",
        }
    }
}

/// A known, finite set of JSON types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Types(pub BTreeSet<JsonType>);

impl Types {
    pub(crate) fn one(t: JsonType) -> Types {
        Types(BTreeSet::from([t]))
    }

    /// Whether a literal value fits. An integer literal fits a number; a number with a fraction
    /// does not fit an integer (serde would refuse `1.0` for a `u32`).
    pub(crate) fn admits(&self, value: &Value) -> bool {
        let t = JsonType::of(value);
        self.0.contains(&t) || (t == JsonType::Integer && self.0.contains(&JsonType::Number))
    }

    /// The types both sets admit; integers are numbers.
    pub(crate) fn intersect(&self, other: &Types) -> Types {
        let mut out = BTreeSet::new();
        for a in &self.0 {
            for b in &other.0 {
                if a == b {
                    out.insert(*a);
                } else if matches!(
                    (a, b),
                    (JsonType::Integer, JsonType::Number) | (JsonType::Number, JsonType::Integer)
                ) {
                    out.insert(JsonType::Integer);
                }
            }
        }
        Types(out)
    }

    pub(crate) fn overlaps(&self, other: &Types) -> bool {
        !self.intersect(other).0.is_empty()
    }
}

impl fmt::Display for Types {
    /// "a string", "a string or null", "an integer, a string or null".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|t| t.article()).collect();
        match names.split_last() {
            None => f.write_str("nothing"),
            Some((last, [])) => f.write_str(last),
            Some((last, rest)) => write!(f, "{} or {last}", rest.join(", ")),
        }
    }
}

/// Intersects two "maybe known" type sets (`None` admits anything).
fn and(a: Option<Types>, b: Option<Types>) -> Option<Types> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.intersect(&b)),
        (a, None) => a,
        (None, b) => b,
    }
}

impl<'a> Schema<'a> {
    /// The top of a schema document.
    pub(crate) fn document(root: &'a Value) -> Self {
        Schema { node: root, root }
    }

    fn at(self, node: &'a Value) -> Self {
        Schema { node, root: self.root }
    }

    /// The node a `$ref` of this node points to (a JSON pointer into the same document).
    fn target(self) -> Option<Schema<'a>> {
        let reference = self.node.get("$ref")?.as_str()?;
        let pointer = reference.strip_prefix('#')?;
        Some(self.at(self.root.pointer(pointer)?))
    }

    /// This node with `$ref`s followed.
    fn resolved(self) -> Schema<'a> {
        let mut current = self;
        for _ in 0..MAX_DEPTH {
            match current.target() {
                Some(next) => current = next,
                None => break,
            }
        }
        current
    }

    /// The alternatives of `anyOf`/`oneOf`/`allOf`, if any.
    fn branches(self, keyword: &str) -> Vec<Schema<'a>> {
        self.node
            .get(keyword)
            .and_then(Value::as_array)
            .map(|bs| bs.iter().map(|b| self.at(b)).collect())
            .unwrap_or_default()
    }

    /// The JSON types this schema admits, or `None` when it cannot tell (or admits anything).
    pub(crate) fn types(self) -> Option<Types> {
        self.types_at(0).filter(|t| !t.0.is_empty())
    }

    fn types_at(self, depth: usize) -> Option<Types> {
        if depth > MAX_DEPTH || !self.node.is_object() {
            return None;
        }
        let mut acc: Option<Types> = self.declared_types();
        if let Some(target) = self.target() {
            acc = and(acc, target.types_at(depth + 1));
        }
        for keyword in ["anyOf", "oneOf"] {
            let branches = self.branches(keyword);
            if !branches.is_empty() {
                let union: Option<BTreeSet<JsonType>> = branches
                    .iter()
                    .map(|b| b.types_at(depth + 1).map(|t| t.0))
                    .try_fold(BTreeSet::new(), |mut all, t| {
                        all.extend(t?);
                        Some(all)
                    });
                acc = and(acc, union.map(Types));
            }
        }
        for branch in self.branches("allOf") {
            acc = and(acc, branch.types_at(depth + 1));
        }
        if let Some(value) = self.node.get("const") {
            acc = and(acc, Some(Types::one(JsonType::of(value))));
        }
        if let Some(values) = self.node.get("enum").and_then(Value::as_array) {
            acc = and(acc, Some(Types(values.iter().map(JsonType::of).collect())));
        }
        acc
    }

    /// Whether a literal fits this schema's `type`, `enum` and `const` constraints, looking through
    /// references and combinators. Constraints not understood are taken to hold.
    pub(crate) fn admits_literal(self, value: &Value) -> bool {
        self.admits_at(value, 0)
    }

    fn admits_at(self, value: &Value, depth: usize) -> bool {
        if depth > MAX_DEPTH || !self.node.is_object() {
            return true;
        }
        let node = self.node;
        if node.get("const").is_some_and(|c| c != value) {
            return false;
        }
        if node
            .get("enum")
            .and_then(Value::as_array)
            .is_some_and(|values| !values.contains(value))
        {
            return false;
        }
        if let Some(types) = self.declared_types() {
            if !types.admits(value) {
                return false;
            }
        }
        if self.target().is_some_and(|t| !t.admits_at(value, depth + 1)) {
            return false;
        }
        for keyword in ["anyOf", "oneOf"] {
            let branches = self.branches(keyword);
            if !branches.is_empty() && !branches.iter().any(|b| b.admits_at(value, depth + 1)) {
                return false;
            }
        }
        self.branches("allOf").iter().all(|b| b.admits_at(value, depth + 1))
    }

    /// The types named by this node's own `type` keyword.
    fn declared_types(self) -> Option<Types> {
        match self.node.get("type")? {
            Value::String(name) => JsonType::from_name(name).map(Types::one),
            Value::Array(names) => names
                .iter()
                .map(|n| n.as_str().and_then(JsonType::from_name))
                .collect::<Option<_>>()
                .map(Types),
            _ => None,
        }
    }

    /// Every value listed by an `enum` or `const` here, behind references or in alternatives, for
    /// messages ("expects one of ...").
    pub(crate) fn listed_values(self) -> Vec<&'a Value> {
        let mut out = Vec::new();
        self.collect_values(0, &mut out);
        out
    }

    fn collect_values(self, depth: usize, out: &mut Vec<&'a Value>) {
        if depth > MAX_DEPTH {
            return;
        }
        if let Some(values) = self.node.get("enum").and_then(Value::as_array) {
            out.extend(values);
        }
        out.extend(self.node.get("const"));
        if self.declared_types().is_some_and(|t| t.0.contains(&JsonType::Null)) && !out.contains(&&Value::Null) {
            out.push(&Value::Null);
        }
        if let Some(target) = self.target() {
            target.collect_values(depth + 1, out);
        }
        for branch in ["anyOf", "oneOf", "allOf"].iter().flat_map(|k| self.branches(k)) {
            branch.collect_values(depth + 1, out);
        }
    }

    /// The schema of property `name` of an object schema, looking through references and
    /// `anyOf`/`oneOf`/`allOf` alternatives (e.g. an `Option` of a struct).
    pub(crate) fn property(self, name: &str) -> Option<Schema<'a>> {
        self.find(0, &|s| s.node.get("properties")?.get(name).map(|p| s.at(p)))
    }

    /// The schema of the items of an array schema.
    pub(crate) fn items(self) -> Option<Schema<'a>> {
        self.find(0, &|s| {
            s.node
                .get("items")
                .filter(|i| i.is_object() || i.is_boolean())
                .map(|i| s.at(i))
        })
    }

    /// The names listed in `required` (looking through references).
    pub(crate) fn required(self) -> Vec<&'a str> {
        let mut out = Vec::new();
        self.collect_required(0, &mut out);
        out
    }

    fn collect_required(self, depth: usize, out: &mut Vec<&'a str>) {
        if depth > MAX_DEPTH {
            return;
        }
        if let Some(names) = self.node.get("required").and_then(Value::as_array) {
            out.extend(names.iter().filter_map(Value::as_str));
        }
        if let Some(target) = self.target() {
            target.collect_required(depth + 1, out);
        }
        for branch in self.branches("allOf") {
            branch.collect_required(depth + 1, out);
        }
    }

    /// True when the object schema forbids properties it does not list (`additionalProperties:
    /// false`, as schemars writes for `#[serde(deny_unknown_fields)]`).
    pub(crate) fn is_closed(self) -> bool {
        self.resolved().node.get("additionalProperties") == Some(&Value::Bool(false))
    }

    /// Applies `get` to this node, then to what it refers to and to its alternatives, depth first.
    fn find(self, depth: usize, get: &dyn Fn(Schema<'a>) -> Option<Schema<'a>>) -> Option<Schema<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        if let Some(found) = get(self) {
            return Some(found);
        }
        if let Some(found) = self.target().and_then(|t| t.find(depth + 1, get)) {
            return Some(found);
        }
        ["anyOf", "oneOf", "allOf"]
            .iter()
            .flat_map(|k| self.branches(k))
            .find_map(|b| b.find(depth + 1, get))
    }
}
