//! YAML in and out, with positions.
//!
//! A GitOps import is a file people edit by hand, so every error must say on which line it is —
//! including errors found long after parsing (an invalid regex, a cycle between rules). Reading
//! therefore keeps, for every node, its path in the document (`rules[2].when.regex`, the same
//! notation serde_path_to_error and the compiler use) and its position; any error with a path is
//! then located by looking the path up.
//!
//! The YAML becomes a `serde_json::Value` first and is deserialized from that, so JSON and YAML
//! share one set of serde types and one set of paths. Scalars are resolved by the YAML 1.2 core
//! schema (octal aside): `yes`, `on` and `no` stay text, and an unquoted `1234567890` is a number.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle};
use yaml_rust2::{YamlEmitter, YamlLoader};

use crate::errors::{join, DocError};

/// Deeper than any sensible condition tree, shallow enough for the recursive code that follows.
const MAX_DEPTH: usize = 64;
/// Nodes after alias expansion: a few aliases must not expand into gigabytes ("billion laughs").
const MAX_NODES: usize = 200_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: usize,
    column: usize,
}

impl From<Marker> for Pos {
    fn from(m: Marker) -> Self {
        // The scanner counts lines from 1 and columns from 0.
        Self { line: m.line(), column: m.col() + 1 }
    }
}

/// Where each node of a YAML document is, by path.
#[derive(Debug, Default)]
pub struct Positions {
    values: HashMap<String, Pos>,
    /// Where a mapping key is written, by the path of its value: unknown fields point here.
    keys: HashMap<String, Pos>,
}

impl Positions {
    /// Gives `e` the line and column of its path, or of the nearest enclosing node that has one
    /// (a missing field is reported at the mapping that lacks it).
    pub fn locate(&self, e: &mut DocError) {
        if e.line.is_some() {
            return;
        }
        // serde's unknown field errors have the field as the path's end: point at the key, not its value.
        let unknown_key = if e.message.starts_with("unknown field `") { self.keys.get(&e.path) } else { None };
        let mut path = e.path.as_str();
        let pos = unknown_key.copied().or_else(|| loop {
            if let Some(p) = self.values.get(path) {
                break Some(*p);
            }
            if path.is_empty() {
                break None;
            }
            path = parent(path);
        });
        if let Some(p) = pos {
            e.line = Some(p.line);
            e.column = Some(p.column);
        }
    }
}

/// `rules[2].when` → `rules[2]` → `rules` → ``.
fn parent(path: &str) -> &str {
    let cut = if path.ends_with(']') { path.rfind('[') } else { path.rfind('.') };
    cut.map_or("", |i| &path[..i])
}

/// A YAML node as read, before scalars are resolved.
#[derive(Debug, Clone)]
struct Node {
    pos: Pos,
    kind: Kind,
    /// Nodes in this subtree, itself included: what an alias to it costs.
    size: usize,
}

#[derive(Debug, Clone)]
enum Kind {
    Scalar { text: String, plain: bool },
    Seq(Vec<Node>),
    /// Keys and values, alternating.
    Map(Vec<Node>),
}

/// Parses one YAML document into a JSON value and the positions of its nodes.
pub fn parse(text: &str) -> Result<(Value, Positions), Vec<DocError>> {
    let Some(root) = read_tree(text).map_err(|e| vec![e])? else {
        return Err(vec![DocError::new("", "required", "the document is empty")]);
    };
    let mut positions = Positions::default();
    let mut errors = Vec::new();
    let value = to_value(root, String::new(), &mut positions, &mut errors);
    if errors.is_empty() {
        Ok((value, positions))
    } else {
        Err(errors)
    }
}

fn syntax_error(pos: Pos, message: impl Into<String>) -> DocError {
    DocError { line: Some(pos.line), column: Some(pos.column), ..DocError::new("", "yaml", message) }
}

fn scan_error(e: &ScanError) -> DocError {
    syntax_error((*e.marker()).into(), e.info())
}

/// Reads the event stream into a tree. Driven event by event (not through the parser's recursive
/// loader) so that nesting depth and alias expansion stay bounded.
fn read_tree(text: &str) -> Result<Option<Node>, DocError> {
    let mut parser = Parser::new_from_str(text);
    let mut open: Vec<(Node, usize)> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root = None;
    let mut documents = 0;
    let mut nodes = 0;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| scan_error(&e))?;
        let pos = Pos::from(mark);
        let (done, anchor) = match event {
            Event::StreamEnd => return Ok(root),
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(syntax_error(pos, "a configuration file holds one YAML document; found a second one"));
                }
                continue;
            }
            Event::Scalar(text, style, anchor, tag) => {
                let plain = style == TScalarStyle::Plain && !is_str_tag(tag.as_ref(), pos)?;
                (Node { pos, kind: Kind::Scalar { text, plain }, size: 1 }, anchor)
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                is_str_tag(tag.as_ref(), pos)?;
                if open.len() >= MAX_DEPTH {
                    return Err(syntax_error(pos, format!("nesting deeper than {MAX_DEPTH} levels")));
                }
                let kind = if matches!(event, Event::SequenceStart(..)) { Kind::Seq(Vec::new()) } else { Kind::Map(Vec::new()) };
                open.push((Node { pos, kind, size: 1 }, anchor));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => open.pop().expect("the parser balances starts and ends"),
            Event::Alias(id) => {
                let target = anchors.get(&id).ok_or_else(|| syntax_error(pos, "alias to an unknown anchor"))?;
                (Node { pos, ..target.clone() }, 0)
            }
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => continue,
        };
        nodes += done.size;
        if nodes > MAX_NODES {
            return Err(syntax_error(pos, format!("the document has more than {MAX_NODES} nodes (aliases counted expanded)")));
        }
        if anchor > 0 {
            anchors.insert(anchor, done.clone());
        }
        match open.last_mut() {
            Some((parent, _)) => {
                parent.size += done.size;
                match &mut parent.kind {
                    Kind::Seq(items) | Kind::Map(items) => items.push(done),
                    Kind::Scalar { .. } => unreachable!("only collections are open"),
                }
            }
            None => root = Some(done),
        }
    }
}

/// Whether a node's tag forces text (`!!str 0123`). Tags other than the core schema's are refused
/// rather than silently ignored.
fn is_str_tag(tag: Option<&yaml_rust2::parser::Tag>, pos: Pos) -> Result<bool, DocError> {
    let Some(tag) = tag else { return Ok(false) };
    match (tag.handle.as_str(), tag.suffix.as_str()) {
        ("tag:yaml.org,2002:", "str") => Ok(true),
        ("tag:yaml.org,2002:", "int" | "float" | "bool" | "null" | "map" | "seq") => Ok(false),
        (handle, suffix) => Err(syntax_error(pos, format!("unsupported tag '{handle}{suffix}': only the core schema's tags (such as !!str) are understood"))),
    }
}

fn to_value(node: Node, path: String, positions: &mut Positions, errors: &mut Vec<DocError>) -> Value {
    positions.values.insert(path.clone(), node.pos);
    match node.kind {
        Kind::Scalar { text, plain: true } => resolve_plain(text),
        Kind::Scalar { text, plain: false } => Value::String(text),
        Kind::Seq(items) => Value::Array(
            items.into_iter().enumerate().map(|(i, n)| to_value(n, format!("{path}[{i}]"), positions, errors)).collect(),
        ),
        Kind::Map(entries) => {
            let mut map = Map::new();
            let mut entries = entries.into_iter();
            while let (Some(key), Some(value)) = (entries.next(), entries.next()) {
                let Kind::Scalar { text: name, .. } = key.kind else {
                    errors.push(syntax_error(key.pos, "mapping keys must be plain text, not lists or mappings"));
                    continue;
                };
                let child = join(&path, &name);
                if let Some(first) = positions.keys.get(&child) {
                    let message = format!("key '{name}' appears twice in this mapping (first on line {})", first.line);
                    errors.push(DocError { line: Some(key.pos.line), column: Some(key.pos.column), ..DocError::new(child, "duplicate", message) });
                    continue;
                }
                positions.keys.insert(child.clone(), key.pos);
                let value = to_value(value, child, positions, errors);
                map.insert(name, value);
            }
            Value::Object(map)
        }
    }
}

/// An unquoted scalar under the YAML 1.2 core schema.
fn resolve_plain(text: String) -> Value {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        t => number(t).map_or(Value::String(text), Value::Number),
    }
}

/// Numbers of the core schema, less octal (`0o17`): the emitter writes text that looks octal
/// unquoted, and an export must read back as text what it wrote as text.
fn number(t: &str) -> Option<Number> {
    if let Some(hex) = t.strip_prefix("0x") {
        // from_str_radix would also take a sign, which YAML does not.
        return i64::from_str_radix(hex, 16).ok().filter(|_| hex.starts_with(|c: char| c.is_ascii_hexdigit())).map(Number::from);
    }
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        || !unsigned.chars().all(|c| c.is_ascii_digit() || ".eE+-".contains(c))
        || !unsigned.contains(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    if let Ok(n) = t.parse::<i64>() {
        return Some(n.into());
    }
    if let Ok(n) = t.parse::<u64>() {
        return Some(n.into());
    }
    t.parse::<f64>().ok().and_then(Number::from_f64)
}

/// Emits a value as block-style YAML. Goes through JSON text, which is YAML, because the loader
/// keeps the fields in the order the serde types declare them (a `serde_json::Value` would sort
/// them alphabetically).
pub fn emit(json: &str) -> String {
    let docs = YamlLoader::load_from_str(json).expect("JSON text is YAML");
    let mut out = String::new();
    // Multi-line strings stay quoted with escapes: the emitter's literal blocks lose trailing
    // blank lines and leading indentation, and an export must read back as the same document.
    YamlEmitter::new(&mut out).dump(&docs[0]).expect("writing to a String does not fail");
    let mut out = out.strip_prefix("---\n").map(str::to_owned).unwrap_or(out);
    out.push('\n');
    out
}
