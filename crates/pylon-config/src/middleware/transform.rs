//! The `transform` middleware's language (Jokoway's set): request operations
//! (`ReplaceHeader`, `AppendHeader`, `DeleteHeader`, `ReplaceQuery`, `AppendQuery`,
//! `DeleteQuery`, `StripPrefix`, `AddPrefix`, `RewritePath`, `SetMethod`) and response
//! operations (`ReplaceHeader`, `AppendHeader`, `DeleteHeader`).
//!
//! This module owns both written forms and their checks: the compact string
//! (``StripPrefix(`/api`); AddPrefix(`/v2`)``, parsed by [`parse_request_ops`] and
//! [`parse_response_ops`], errors at the character) and the structured list of one-key maps
//! (`- strip_prefix: /api`, errors at the field, from [`Transform::validate`]). Both give the
//! same typed values, and one set of checks ([`RequestOp::problem`]) serves both, so a value
//! the compact form refuses is refused the same way in the structured form. The runtime
//! (`pylon-core`) compiles these values again into header names, regexes and methods.

use std::fmt;
use std::marker::PhantomData;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::headers::{header_name_problem, template_value_problem};
use super::template::Template;
use crate::de::{did_you_mean, error_at_column};
use crate::error::ConfigError;
use crate::validate::{is_tchar, Spot};

/// Request and response rewrites, applied in the order written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Transform {
    /// Operations on the request before it goes upstream: a compact string
    /// (``"StripPrefix(`/api`); AddPrefix(`/v2`)"``) or a list of one-key maps
    /// (`- strip_prefix: /api`).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "serialize_ops",
        deserialize_with = "deserialize_ops"
    )]
    #[schemars(schema_with = "request_schema")]
    pub request: Vec<RequestOp>,
    /// Operations on the response headers before they go to the client: a compact string
    /// (``"DeleteHeader(`Server`)"``) or a list of one-key maps (`- delete_header: Server`).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "serialize_ops",
        deserialize_with = "deserialize_ops"
    )]
    #[schemars(schema_with = "response_schema")]
    pub response: Vec<ResponseOp>,
}

/// One request operation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestOp {
    /// `ReplaceHeader(name, value)`: set the header to this one value (added when absent).
    ReplaceHeader(NameValue),
    /// `AppendHeader(name, value)`: add one more value of the header.
    AppendHeader(NameValue),
    /// `DeleteHeader(name)`: remove every value of the header.
    DeleteHeader(String),
    /// `ReplaceQuery(name, value)`: set the query parameter to this one value (added when
    /// absent).
    ReplaceQuery(NameValue),
    /// `AppendQuery(name, value)`: add one more `name=value` to the query.
    AppendQuery(NameValue),
    /// `DeleteQuery(name)`: remove every occurrence of the query parameter.
    DeleteQuery(String),
    /// `StripPrefix(prefix)`: remove the prefix from the path (the query is kept).
    StripPrefix(String),
    /// `AddPrefix(prefix)`: put the prefix before the path (the query is kept).
    AddPrefix(String),
    /// `RewritePath(regex, replacement)`: replace the regex's matches in the path.
    RewritePath(RewritePathOp),
    /// `SetMethod(method)`: send the request upstream with this method.
    SetMethod(String),
}

/// One response operation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResponseOp {
    /// `ReplaceHeader(name, value)`: set the header to this one value (added when absent).
    ReplaceHeader(NameValue),
    /// `AppendHeader(name, value)`: add one more value of the header.
    AppendHeader(NameValue),
    /// `DeleteHeader(name)`: remove every value of the header.
    DeleteHeader(String),
}

/// A name and a value (header or query parameter).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NameValue {
    /// Header or query parameter name.
    pub name: String,
    /// The value; may use request variables (`{client_ip}`).
    pub value: Template,
}

/// `RewritePath(regex, replacement)`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RewritePathOp {
    /// A regex over the path (unanchored; write `^` to anchor it).
    pub regex: String,
    /// The new path, with `$1` or `$name` for captures.
    pub replacement: String,
}

/// A compact string that does not parse: what is wrong, at which 1-based character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.column)
    }
}

/// Parses a compact request string: ``StripPrefix(`/api`); ReplaceHeader(`X-A`, `b`)``.
pub fn parse_request_ops(source: &str) -> Result<Vec<RequestOp>, ParseError> {
    parse_ops(source)
}

/// Parses a compact response string: ``DeleteHeader(`Server`)``.
pub fn parse_response_ops(source: &str) -> Result<Vec<ResponseOp>, ParseError> {
    parse_ops(source)
}

// ---------------------------------------------------------------------------------------
// The operations' names, arguments and checks, shared by both forms.
// ---------------------------------------------------------------------------------------

/// What the compact parser and the structured checks need from an operation type.
trait Op: Sized + fmt::Display {
    /// The side, for messages ("request", "response").
    const SIDE: &'static str;
    /// Builds the operation named `name` (canonical spelling) from its arguments, or says
    /// which argument is wrong: `Err((argument index, message))`.
    fn build(name: &str, args: Vec<Arg>) -> Result<Self, Wrong>;
    /// The first problem with the values: (argument index, structured key, message).
    fn problem(&self) -> Option<(usize, &'static str, String)>;
    /// The structured form's key (`strip_prefix`).
    fn key(&self) -> &'static str;
}

/// Every operation: compact name, structured key, argument names.
const OPERATIONS: [(&str, &str, &[&str]); 10] = [
    ("ReplaceHeader", "replace_header", &["name", "value"]),
    ("AppendHeader", "append_header", &["name", "value"]),
    ("DeleteHeader", "delete_header", &["name"]),
    ("ReplaceQuery", "replace_query", &["name", "value"]),
    ("AppendQuery", "append_query", &["name", "value"]),
    ("DeleteQuery", "delete_query", &["name"]),
    ("StripPrefix", "strip_prefix", &["prefix"]),
    ("AddPrefix", "add_prefix", &["prefix"]),
    ("RewritePath", "rewrite_path", &["regex", "replacement"]),
    ("SetMethod", "set_method", &["method"]),
];

/// The operations the response side takes.
const RESPONSE_OPERATIONS: [&str; 3] = ["ReplaceHeader", "AppendHeader", "DeleteHeader"];

/// One argument of the compact form: its text and where each character was written.
#[derive(Debug)]
struct Arg {
    text: String,
    /// The column of the opening quote.
    column: usize,
    /// The column of each character of `text` (escapes make these differ from `column+i`).
    columns: Vec<usize>,
}

impl Arg {
    /// The source column of character `n` (1-based) of the text.
    fn column_of(&self, n: usize) -> usize {
        self.columns
            .get(n.saturating_sub(1))
            .copied()
            .unwrap_or(self.column + self.text.chars().count() + 1)
    }
}

/// Why a header name is refused, if it is.
fn query_name_problem(name: &str) -> Option<String> {
    name.is_empty()
        .then(|| "the query parameter name is empty".to_string())
}

/// A prefix is a path: it starts with `/` and has no query, fragment, space or control
/// character (it is inserted into the request line as written).
fn prefix_problem(prefix: &str) -> Option<String> {
    if !prefix.starts_with('/') {
        return Some(format!("the prefix must start with `/`, found {prefix:?}"));
    }
    prefix
        .chars()
        .find(|c| matches!(c, '?' | '#') || c.is_whitespace() || c.is_control() || !c.is_ascii())
        .map(|c| {
            format!(
                "the prefix may not contain {c:?}: write a path (percent-encode other characters)"
            )
        })
}

fn regex_problem(regex: &str) -> Option<String> {
    regex::Regex::new(regex).err().map(|e| {
        // The crate's message spans several lines with a caret; its last line says why.
        let text = e.to_string();
        let why = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .trim_start_matches("error: ")
            .to_string();
        format!("invalid regex {regex:?}: {why}")
    })
}

/// A capture reference in `replacement` that `regex` does not define (`$3` with two groups,
/// `$nmae`, or `$1a`, which the regex crate reads as a group named `1a`): it would expand to
/// nothing, silently. `None` when every reference resolves (or the regex is invalid, which
/// is reported on its own).
pub(crate) fn replacement_problem(regex: &str, replacement: &str) -> Option<String> {
    let re = regex::Regex::new(regex).ok()?;
    let names: Vec<&str> = re.capture_names().flatten().collect();
    let bytes = replacement.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        i += 1;
        let (name, next) = match bytes.get(i) {
            // `$$` is a literal dollar.
            Some(b'$') => {
                i += 1;
                continue;
            }
            Some(b'{') => match replacement[i + 1..].find('}') {
                Some(end) => (&replacement[i + 1..i + 1 + end], i + end + 2),
                None => break,
            },
            _ => {
                let len = replacement[i..]
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    .count();
                (&replacement[i..i + len], i + len)
            }
        };
        i = next;
        if name.is_empty() {
            continue;
        }
        let known = match name.parse::<usize>() {
            Ok(n) => n < re.captures_len(),
            Err(_) => names.contains(&name),
        };
        if !known {
            let groups = re.captures_len() - 1;
            let mut m = format!("`${name}` is not a group of the regex ({groups} numbered");
            if !names.is_empty() {
                m.push_str(&format!(", named: {}", names.join(", ")));
            }
            m.push(')');
            if name.as_bytes()[0].is_ascii_digit() {
                m.push_str(&format!(
                    "; to follow a group by text, write `${{{}}}`",
                    name.trim_end_matches(|c: char| !c.is_ascii_digit())
                ));
            }
            return Some(m);
        }
    }
    None
}

fn method_problem(method: &str) -> Option<String> {
    (method.is_empty() || !method.bytes().all(is_tchar)).then(|| {
        format!("invalid method {method:?}: a method is a token such as GET, POST or PURGE")
    })
}

/// Builds a name-value pair from two arguments, the value parsed as a template.
fn name_value(args: Vec<Arg>) -> Result<NameValue, Wrong> {
    let mut it = args.into_iter();
    let (Some(name), Some(value)) = (it.next(), it.next()) else {
        return Err(Wrong::Name("two arguments expected".into()));
    };
    let template = template_at(&value)?;
    Ok(NameValue {
        name: name.text,
        value: template,
    })
}

/// The template in `arg`; a parse error points at its character in the source.
fn template_at(arg: &Arg) -> Result<Template, Wrong> {
    Template::parse(&arg.text).map_err(|e| Wrong::At(arg.column_of(e.column), e.message))
}

/// What `build` refuses, and where.
enum Wrong {
    /// Argument `n` (0-based) is wrong.
    Arg(usize, String),
    /// The character at this column is wrong.
    At(usize, String),
    /// The operation itself is wrong here.
    Name(String),
}

impl Wrong {
    fn locate(self, arg_columns: &[usize], name_column: usize) -> ParseError {
        let (column, message) = match self {
            Wrong::Arg(i, m) => (arg_columns.get(i).copied().unwrap_or(name_column), m),
            Wrong::At(c, m) => (c, m),
            Wrong::Name(m) => (name_column, m),
        };
        ParseError { column, message }
    }
}

fn one(args: Vec<Arg>) -> String {
    args.into_iter().next().map(|a| a.text).unwrap_or_default()
}

impl Op for RequestOp {
    const SIDE: &'static str = "request";

    fn build(name: &str, args: Vec<Arg>) -> Result<Self, Wrong> {
        Ok(match name {
            "ReplaceHeader" => RequestOp::ReplaceHeader(name_value(args)?),
            "AppendHeader" => RequestOp::AppendHeader(name_value(args)?),
            "DeleteHeader" => RequestOp::DeleteHeader(one(args)),
            "ReplaceQuery" => RequestOp::ReplaceQuery(name_value(args)?),
            "AppendQuery" => RequestOp::AppendQuery(name_value(args)?),
            "DeleteQuery" => RequestOp::DeleteQuery(one(args)),
            "StripPrefix" => RequestOp::StripPrefix(one(args)),
            "AddPrefix" => RequestOp::AddPrefix(one(args)),
            "RewritePath" => {
                let mut it = args.into_iter();
                RequestOp::RewritePath(RewritePathOp {
                    regex: it.next().map(|a| a.text).unwrap_or_default(),
                    replacement: it.next().map(|a| a.text).unwrap_or_default(),
                })
            }
            "SetMethod" => RequestOp::SetMethod(one(args)),
            _ => return Err(Wrong::Name(format!("unknown operation `{name}`"))),
        })
    }

    fn problem(&self) -> Option<(usize, &'static str, String)> {
        match self {
            RequestOp::ReplaceHeader(nv) | RequestOp::AppendHeader(nv) => {
                header_name_problem(&nv.name)
                    .map(|m| (0, "name", m))
                    .or_else(|| template_value_problem(&nv.value).map(|m| (1, "value", m)))
            }
            RequestOp::DeleteHeader(name) => header_name_problem(name).map(|m| (0, "", m)),
            RequestOp::ReplaceQuery(nv) | RequestOp::AppendQuery(nv) => {
                query_name_problem(&nv.name).map(|m| (0, "name", m))
            }
            RequestOp::DeleteQuery(name) => query_name_problem(name).map(|m| (0, "", m)),
            RequestOp::StripPrefix(p) | RequestOp::AddPrefix(p) => {
                prefix_problem(p).map(|m| (0, "", m))
            }
            RequestOp::RewritePath(r) => {
                regex_problem(&r.regex)
                    .map(|m| (0, "regex", m))
                    .or_else(|| {
                        replacement_problem(&r.regex, &r.replacement).map(|m| (1, "replacement", m))
                    })
            }
            RequestOp::SetMethod(m) => method_problem(m).map(|m| (0, "", m)),
        }
    }

    fn key(&self) -> &'static str {
        OPERATIONS[self.index()].1
    }
}

impl RequestOp {
    /// The operation's row in [`OPERATIONS`].
    fn index(&self) -> usize {
        match self {
            RequestOp::ReplaceHeader(_) => 0,
            RequestOp::AppendHeader(_) => 1,
            RequestOp::DeleteHeader(_) => 2,
            RequestOp::ReplaceQuery(_) => 3,
            RequestOp::AppendQuery(_) => 4,
            RequestOp::DeleteQuery(_) => 5,
            RequestOp::StripPrefix(_) => 6,
            RequestOp::AddPrefix(_) => 7,
            RequestOp::RewritePath(_) => 8,
            RequestOp::SetMethod(_) => 9,
        }
    }
}

impl Op for ResponseOp {
    const SIDE: &'static str = "response";

    fn build(name: &str, args: Vec<Arg>) -> Result<Self, Wrong> {
        Ok(match name {
            "ReplaceHeader" => ResponseOp::ReplaceHeader(name_value(args)?),
            "AppendHeader" => ResponseOp::AppendHeader(name_value(args)?),
            "DeleteHeader" => ResponseOp::DeleteHeader(one(args)),
            _ => {
                return Err(Wrong::Name(format!(
                    "`{name}` changes the request; the response side takes {}",
                    RESPONSE_OPERATIONS.join(", ")
                )))
            }
        })
    }

    fn problem(&self) -> Option<(usize, &'static str, String)> {
        self.as_request().problem()
    }

    fn key(&self) -> &'static str {
        self.as_request().key()
    }
}

impl ResponseOp {
    /// The same operation seen as a request operation, to share checks and printing.
    fn as_request(&self) -> RequestOp {
        match self {
            ResponseOp::ReplaceHeader(nv) => RequestOp::ReplaceHeader(nv.clone()),
            ResponseOp::AppendHeader(nv) => RequestOp::AppendHeader(nv.clone()),
            ResponseOp::DeleteHeader(n) => RequestOp::DeleteHeader(n.clone()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The compact form.
// ---------------------------------------------------------------------------------------

/// Writes an argument so that it reads back as `text`: in backticks (raw) unless it holds
/// a backtick, else in double quotes with `\"` and `\\` escaped.
fn write_arg(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    if !text.contains('`') {
        write!(f, "`{text}`")
    } else {
        f.write_str("\"")?;
        for c in text.chars() {
            if c == '"' || c == '\\' {
                f.write_str("\\")?;
            }
            write!(f, "{c}")?;
        }
        f.write_str("\"")
    }
}

impl fmt::Display for RequestOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let args: Vec<String> = match self {
            RequestOp::ReplaceHeader(nv)
            | RequestOp::AppendHeader(nv)
            | RequestOp::ReplaceQuery(nv)
            | RequestOp::AppendQuery(nv) => vec![nv.name.clone(), nv.value.to_string()],
            RequestOp::DeleteHeader(s)
            | RequestOp::DeleteQuery(s)
            | RequestOp::StripPrefix(s)
            | RequestOp::AddPrefix(s)
            | RequestOp::SetMethod(s) => vec![s.clone()],
            RequestOp::RewritePath(r) => vec![r.regex.clone(), r.replacement.clone()],
        };
        f.write_str(OPERATIONS[self.index()].0)?;
        f.write_str("(")?;
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write_arg(f, a)?;
        }
        f.write_str(")")
    }
}

impl fmt::Display for ResponseOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_request().fmt(f)
    }
}

/// Writes operations as one compact string that parses back to them.
pub fn to_compact<T: fmt::Display>(ops: &[T]) -> String {
    ops.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A cursor over the characters of a compact string; columns are 1-based characters.
struct Cursor {
    chars: Vec<char>,
    at: usize,
}

impl Cursor {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn column(&self) -> usize {
        self.at + 1
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            column: self.column(),
            message: message.into(),
        })
    }

    /// What is at the cursor, for "found …" in messages.
    fn found(&self) -> String {
        match self.peek() {
            Some(c) => format!("`{c}`"),
            None => "the end".into(),
        }
    }

    /// An argument in backticks (raw) or double quotes (`\"` and `\\` escapes; other
    /// backslashes are kept, so regexes such as `"\d+"` read naturally).
    fn arg(&mut self) -> Result<Arg, ParseError> {
        let open = self.column();
        let quote = match self.peek() {
            Some(q @ ('`' | '"')) => q,
            _ => {
                return self.error(format!(
                    "expected an argument in backticks or double quotes (`/api`), found {}",
                    self.found()
                ))
            }
        };
        self.at += 1;
        let mut text = String::new();
        let mut columns = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                let name = if quote == '`' {
                    "backtick"
                } else {
                    "double quote"
                };
                return Err(ParseError {
                    column: open,
                    message: format!("unclosed {name}: end the argument with {quote}"),
                });
            };
            let column = self.column();
            self.at += 1;
            if c == quote {
                break;
            }
            if quote == '"' && c == '\\' {
                if let Some(next @ ('"' | '\\')) = self.peek() {
                    self.at += 1;
                    text.push(next);
                    columns.push(column);
                    continue;
                }
            }
            text.push(c);
            columns.push(column);
        }
        Ok(Arg {
            text,
            column: open,
            columns,
        })
    }
}

/// Parses a compact string into operations of one side, running every check.
fn parse_ops<T: Op>(source: &str) -> Result<Vec<T>, ParseError> {
    let mut cur = Cursor {
        chars: source.chars().collect(),
        at: 0,
    };
    let mut ops = Vec::new();
    cur.skip_ws();
    while cur.peek().is_some() {
        // The operation name.
        let name_column = cur.column();
        let start = cur.at;
        while cur
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            cur.at += 1;
        }
        if cur.at == start {
            return cur.error(format!(
                "expected an operation such as StripPrefix(`/api`), found {}",
                cur.found()
            ));
        }
        let written: String = cur.chars[start..cur.at].iter().collect();
        let Some((name, _, params)) = OPERATIONS
            .iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(&written))
            .copied()
        else {
            let mut message = format!("unknown operation `{written}`");
            let names = OPERATIONS.iter().map(|o| o.0);
            if let Some(hint) = did_you_mean(&written, names.clone()) {
                message.push_str(&format!(", did you mean `{hint}`?"));
            } else {
                message.push_str(&format!(
                    " (known: {})",
                    names.collect::<Vec<_>>().join(", ")
                ));
            }
            return Err(ParseError {
                column: name_column,
                message,
            });
        };
        cur.skip_ws();
        if cur.peek() != Some('(') {
            return cur.error(format!(
                "expected `(` after `{name}`, found {}",
                cur.found()
            ));
        }
        let open_paren = cur.column();
        cur.at += 1;
        cur.skip_ws();
        // The arguments.
        let mut args = Vec::new();
        if cur.peek() == Some(')') {
            cur.at += 1;
        } else {
            loop {
                args.push(cur.arg()?);
                cur.skip_ws();
                match cur.peek() {
                    Some(',') => {
                        cur.at += 1;
                        cur.skip_ws();
                    }
                    Some(')') => {
                        cur.at += 1;
                        break;
                    }
                    None => {
                        return Err(ParseError {
                            column: open_paren,
                            message: "unclosed `(`: end the arguments with `)`".into(),
                        })
                    }
                    Some(_) => {
                        return cur.error(format!(
                            "expected `,` or `)` after an argument, found {}",
                            cur.found()
                        ))
                    }
                }
            }
        }
        if args.len() != params.len() {
            let plural = if params.len() == 1 { "" } else { "s" };
            return Err(ParseError {
                column: name_column,
                message: format!(
                    "`{name}` takes {} argument{plural}: {name}({}), found {}",
                    params.len(),
                    params.join(", "),
                    args.len()
                ),
            });
        }
        let arg_columns: Vec<usize> = args.iter().map(|a| a.column).collect();
        let op = T::build(name, args).map_err(|w| w.locate(&arg_columns, name_column))?;
        if let Some((index, _, message)) = op.problem() {
            return Err(Wrong::Arg(index, message).locate(&arg_columns, name_column));
        }
        ops.push(op);
        // Between operations.
        cur.skip_ws();
        match cur.peek() {
            None => {}
            Some(';') => {
                cur.at += 1;
                cur.skip_ws();
            }
            Some(_) => {
                return cur.error(format!(
                    "expected `;` between operations, found {}",
                    cur.found()
                ))
            }
        }
    }
    Ok(ops)
}

// ---------------------------------------------------------------------------------------
// Serde: a compact string or a list, written back as a compact string.
// ---------------------------------------------------------------------------------------

/// Reads a compact string (errors at the character) or a structured list.
fn deserialize_ops<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Op + Deserialize<'de>,
{
    struct V<T>(PhantomData<T>);
    impl<'de, T: Op + Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "{} operations: a string such as \"StripPrefix(`/api`)\" or a list such as [{{ strip_prefix: /api }}]",
                T::SIDE
            )
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<T>, E> {
            parse_ops(v).map_err(|e| error_at_column(e.column, e.message))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_none<E: de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(op) = seq.next_element::<T>()? {
                out.push(op);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V(PhantomData))
}

/// Writes operations as their compact string, which reads back to the same values.
fn serialize_ops<S: Serializer, T: fmt::Display>(ops: &[T], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&to_compact(ops))
}

fn ops_schema<T: JsonSchema>(generator: &mut SchemaGenerator, description: &str) -> Schema {
    let list = generator.subschema_for::<Vec<T>>();
    json_schema!({
        "description": description,
        "anyOf": [
            { "type": "string", "description": "Operations separated by `;`, arguments in backticks or double quotes: StripPrefix(`/api`); ReplaceHeader(`X-A`, `{client_ip}`)" },
            list
        ]
    })
}

fn request_schema(generator: &mut SchemaGenerator) -> Schema {
    ops_schema::<RequestOp>(
        generator,
        "Operations on the request before it goes upstream: a compact string or a list of one-key maps.",
    )
}

fn response_schema(generator: &mut SchemaGenerator) -> Schema {
    ops_schema::<ResponseOp>(
        generator,
        "Operations on the response headers: a compact string or a list of one-key maps.",
    )
}

// ---------------------------------------------------------------------------------------
// Checks of the structured form.
// ---------------------------------------------------------------------------------------

impl Transform {
    /// Checks the values; errors point at the field of the structured form. A compact
    /// string was already checked while parsing (same checks), so it never fails here.
    pub(crate) fn validate(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        check_list(&spot.key("request"), &self.request, errors);
        check_list(&spot.key("response"), &self.response, errors);
    }
}

fn check_list<T: Op>(spot: &Spot<'_>, ops: &[T], errors: &mut Vec<ConfigError>) {
    for (i, op) in ops.iter().enumerate() {
        if let Some((_, field, message)) = op.problem() {
            let at = spot.item(i).key(op.key());
            let at = if field.is_empty() { at } else { at.key(field) };
            errors.push(at.error(message));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn nv(name: &str, value: &str) -> NameValue {
        NameValue {
            name: name.into(),
            value: Template::parse(value).unwrap(),
        }
    }

    fn err(source: &str) -> ParseError {
        parse_request_ops(source).unwrap_err()
    }

    fn every_request_op() -> Vec<RequestOp> {
        vec![
            RequestOp::ReplaceHeader(nv("X-A", "{client_ip}")),
            RequestOp::AppendHeader(nv("X-B", "b {{x}}")),
            RequestOp::DeleteHeader("X-C".into()),
            RequestOp::ReplaceQuery(nv("q", "{route}")),
            RequestOp::AppendQuery(nv("r", "a b&c")),
            RequestOp::DeleteQuery("debug".into()),
            RequestOp::StripPrefix("/api".into()),
            RequestOp::AddPrefix("/v2".into()),
            RequestOp::RewritePath(RewritePathOp {
                regex: "^/api/(?P<rest>.*)".into(),
                replacement: "/v2/$rest".into(),
            }),
            RequestOp::SetMethod("POST".into()),
        ]
    }

    #[test]
    fn every_request_op_parses() {
        let source = "ReplaceHeader(`X-A`, `{client_ip}`); AppendHeader(\"X-B\", \"b {{x}}\");\n\
            DeleteHeader(`X-C`) ; ReplaceQuery(`q`,`{route}`);AppendQuery(`r`, `a b&c`); \
            DeleteQuery(`debug`); StripPrefix(`/api`); AddPrefix( `/v2` ); \
            RewritePath(`^/api/(?P<rest>.*)`, `/v2/$rest`); SetMethod(`POST`);";
        assert_eq!(parse_request_ops(source).unwrap(), every_request_op());
    }

    #[test]
    fn every_response_op_parses() {
        let ops = parse_response_ops(
            "ReplaceHeader(`X-A`, `{request_id}`); AppendHeader(`X-B`, `b`); DeleteHeader(`Server`)",
        )
        .unwrap();
        assert_eq!(
            ops,
            vec![
                ResponseOp::ReplaceHeader(nv("X-A", "{request_id}")),
                ResponseOp::AppendHeader(nv("X-B", "b")),
                ResponseOp::DeleteHeader("Server".into()),
            ]
        );
    }

    #[test]
    fn empty_and_whitespace_are_no_operations_and_names_ignore_case() {
        assert_eq!(parse_request_ops("").unwrap(), vec![]);
        assert_eq!(parse_request_ops("  \n ").unwrap(), vec![]);
        assert_eq!(
            parse_request_ops("stripprefix(`/a`)").unwrap(),
            vec![RequestOp::StripPrefix("/a".into())]
        );
    }

    #[test]
    fn compact_and_structured_forms_are_equal() {
        let compact: Transform = serde_json::from_value(serde_json::json!({
            "request": to_compact(&every_request_op()),
            "response": "DeleteHeader(`Server`); ReplaceHeader(`X-A`, `1`)",
        }))
        .unwrap();
        let structured: Transform = serde_json::from_value(serde_json::json!({
            "request": [
                { "replace_header": { "name": "X-A", "value": "{client_ip}" } },
                { "append_header": { "name": "X-B", "value": "b {{x}}" } },
                { "delete_header": "X-C" },
                { "replace_query": { "name": "q", "value": "{route}" } },
                { "append_query": { "name": "r", "value": "a b&c" } },
                { "delete_query": "debug" },
                { "strip_prefix": "/api" },
                { "add_prefix": "/v2" },
                { "rewrite_path": { "regex": "^/api/(?P<rest>.*)", "replacement": "/v2/$rest" } },
                { "set_method": "POST" },
            ],
            "response": [
                { "delete_header": "Server" },
                { "replace_header": { "name": "X-A", "value": 1 } },
            ],
        }))
        .unwrap();
        assert_eq!(compact, structured);
        assert_eq!(compact.request, every_request_op());
    }

    #[test]
    fn serializes_to_a_compact_string_that_loads_back() {
        let t = Transform {
            request: every_request_op(),
            response: vec![ResponseOp::AppendHeader(nv("X-A", "{host}"))],
        };
        let json = serde_json::to_value(&t).unwrap();
        assert!(json["request"]
            .as_str()
            .unwrap()
            .starts_with("ReplaceHeader(`X-A`, `{client_ip}`); AppendHeader(`X-B`, `b {{x}}`);"));
        assert_eq!(
            json["response"],
            serde_json::json!("AppendHeader(`X-A`, `{host}`)")
        );
        assert_eq!(serde_json::from_value::<Transform>(json).unwrap(), t);
    }

    #[test]
    fn display_round_trips_awkward_arguments() {
        let ops = vec![
            RequestOp::RewritePath(RewritePathOp {
                regex: r#"^/a`b"\d+"#.into(),
                replacement: "/x\\y".into(),
            }),
            RequestOp::AddPrefix("/a\"b".into()),
        ];
        let text = to_compact(&ops);
        assert_eq!(
            text,
            r#"RewritePath("^/a`b\"\\d+", `/x\y`); AddPrefix(`/a"b`)"#
        );
        assert_eq!(parse_request_ops(&text).unwrap(), ops);
        // In double quotes, other backslashes are kept for regexes.
        assert_eq!(
            parse_request_ops(r#"RewritePath("^/v\d+", "/")"#).unwrap(),
            vec![RequestOp::RewritePath(RewritePathOp {
                regex: r"^/v\d+".into(),
                replacement: "/".into()
            })]
        );
    }

    #[test]
    fn errors_point_at_the_column() {
        let e = err("StripPrefx(`/api`)");
        assert_eq!(e.column, 1);
        assert_eq!(
            e.message,
            "unknown operation `StripPrefx`, did you mean `StripPrefix`?"
        );
        let e = err("StripPrefix(`/a`); Frobnicate(`x`)");
        assert_eq!(e.column, 20);
        assert!(e.message.contains("known: ReplaceHeader"), "{}", e.message);

        let e = err("AddPrefix(`/a`); StripPrefix(`/a`, `/b`)");
        assert_eq!(e.column, 18);
        assert_eq!(
            e.message,
            "`StripPrefix` takes 1 argument: StripPrefix(prefix), found 2"
        );
        let e = err("ReplaceHeader(`X-A`)");
        assert_eq!(
            (e.column, e.message.as_str()),
            (
                1,
                "`ReplaceHeader` takes 2 arguments: ReplaceHeader(name, value), found 1"
            )
        );

        let e = err("StripPrefix(`/api)");
        assert_eq!(e.column, 13);
        assert_eq!(e.message, "unclosed backtick: end the argument with `");
        let e = err("AddPrefix(\"/a\\\")");
        assert_eq!(e.column, 11);
        assert!(e.message.starts_with("unclosed double quote"));

        let e = err("RewritePath(`^/(a`, `/x`)");
        assert_eq!(e.column, 13);
        assert!(
            e.message.starts_with("invalid regex \"^/(a\": "),
            "{}",
            e.message
        );
        assert!(e.message.contains("unclosed group"), "{}", e.message);

        let e = err("ReplaceHeader(`X A`, `v`)");
        assert_eq!(e.column, 15);
        assert!(e.message.starts_with("invalid header name \"X A\""));
        let e = err("DeleteHeader(``)");
        assert_eq!(e.column, 14);

        let e = err("SetMethod(`PO ST`)");
        assert_eq!(e.column, 11);
        assert!(e.message.starts_with("invalid method \"PO ST\""));

        let e = err("StripPrefix(`api`)");
        assert_eq!(e.column, 13);
        assert_eq!(e.message, "the prefix must start with `/`, found \"api\"");
        let e = err("AddPrefix(`/a?b`)");
        assert!(e.message.contains("may not contain '?'"), "{}", e.message);

        let e = err("DeleteQuery(``)");
        assert_eq!(
            (e.column, e.message.as_str()),
            (13, "the query parameter name is empty")
        );

        let e = parse_response_ops("DeleteHeader(`A`); StripPrefix(`/api`)").unwrap_err();
        assert_eq!(e.column, 20);
        assert_eq!(
            e.message,
            "`StripPrefix` changes the request; the response side takes ReplaceHeader, AppendHeader, DeleteHeader"
        );
    }

    #[test]
    fn syntax_errors_point_at_the_column() {
        let e = err("StripPrefix `/a`");
        assert_eq!(e.column, 13);
        assert_eq!(e.message, "expected `(` after `StripPrefix`, found ```");
        let e = err("StripPrefix(/a)");
        assert_eq!(e.column, 13);
        assert!(e
            .message
            .starts_with("expected an argument in backticks or double quotes"));
        let e = err("StripPrefix(`/a` `/b`)");
        assert_eq!(e.column, 18);
        assert_eq!(
            e.message,
            "expected `,` or `)` after an argument, found ```"
        );
        let e = err("StripPrefix(`/a`");
        assert_eq!(e.column, 12);
        assert_eq!(e.message, "unclosed `(`: end the arguments with `)`");
        let e = err("StripPrefix(`/a`) AddPrefix(`/b`)");
        assert_eq!(e.column, 19);
        assert_eq!(e.message, "expected `;` between operations, found `A`");
        let e = err("StripPrefix(`/a`);;");
        assert_eq!(e.column, 19);
        assert!(e.message.starts_with("expected an operation"));
    }

    #[test]
    fn template_errors_point_inside_the_argument() {
        // The argument opens at column 22; `{` is its fourth character.
        let e = err("ReplaceHeader(`X-A`, `ip={clent_ip}`)");
        assert_eq!(e.column, 26);
        assert!(
            e.message.contains("did you mean `{client_ip}`"),
            "{}",
            e.message
        );
        // Escapes shift columns: `\"` is two characters in the source, one in the value.
        let e = err(r#"ReplaceQuery(`q`, "\"\"{x")"#);
        assert_eq!(e.column, 24);
        let e = err("ReplaceHeader(`X-A`, `a\u{1}`)");
        assert_eq!(e.column, 22);
        assert!(e.message.starts_with("invalid header value"));
    }

    #[test]
    fn structured_values_are_checked_too() {
        let t: Transform = serde_json::from_value(serde_json::json!({
            "request": [{ "set_method": "PO ST" }, { "strip_prefix": "api" }],
            "response": [{ "replace_header": { "name": "X A", "value": "v" } }],
        }))
        .unwrap();
        let problems: Vec<_> = t.request.iter().filter_map(Op::problem).collect();
        assert_eq!(problems.len(), 2);
        assert_eq!(t.response[0].problem().unwrap().1, "name");
    }

    #[test]
    fn a_wrong_type_is_refused() {
        let e =
            serde_json::from_value::<Transform>(serde_json::json!({ "request": 5 })).unwrap_err();
        assert!(e.to_string().contains("request operations"), "{e}");
    }

    const BASE: &str = "listeners: [{ name: web, address: \"127.0.0.1:8080\" }]\nupstreams: { app: { servers: [\"127.0.0.1:9000\"] } }\nmiddlewares:\n  t:\n    transform:\n";

    fn load(yaml: &str) -> Result<Transform, Vec<String>> {
        let text = format!("{BASE}{yaml}");
        match crate::load_str(&text, crate::Format::Yaml, std::path::Path::new("t.yaml")) {
            Ok(config) => match config.middlewares.get("t") {
                Some(crate::Middleware::Transform(t)) => Ok(t.clone()),
                other => panic!("{other:?}"),
            },
            Err(e) => Err(e.0.iter().map(ToString::to_string).collect()),
        }
    }

    #[test]
    fn yaml_forms_load_to_the_same_value() {
        let compact = load(
            "      request: \"StripPrefix(`/api`); AddPrefix(`/v2`); ReplaceHeader(`X-Who`, `{client_ip}`)\"\n      response: \"DeleteHeader(`Server`)\"\n",
        )
        .unwrap();
        let structured = load(
            "      request:\n        - strip_prefix: /api\n        - add_prefix: /v2\n        - replace_header: { name: X-Who, value: \"{client_ip}\" }\n      response:\n        - delete_header: Server\n",
        )
        .unwrap();
        assert_eq!(compact, structured);
        assert_eq!(compact.request.len(), 3);
    }

    #[test]
    fn yaml_compact_errors_point_at_the_character() {
        // The string's content starts at line 6, column 17; `StripPrefx` is its 18th character.
        let errs = load("      request: \"AddPrefix(`/a`); StripPrefx(`/b`)\"\n").unwrap_err();
        assert_eq!(
            errs,
            ["t.yaml:6:34: middlewares.t.transform.request: unknown operation `StripPrefx`, did you mean `StripPrefix`?"]
        );
    }

    #[test]
    fn yaml_response_side_refuses_request_operations() {
        let errs = load("      response:\n        - strip_prefix: /a\n").unwrap_err();
        assert_eq!(
            errs,
            ["t.yaml:7:11: middlewares.t.transform.response[0].strip_prefix: unknown value `strip_prefix`, expected one of: replace_header, append_header, delete_header"]
        );
    }

    #[test]
    fn yaml_structured_value_errors_point_at_the_field() {
        let errs = load(
            "      request:\n        - set_method: GET\n        - replace_header: { name: \"X A\", value: v }\n        - rewrite_path: { regex: \"(\", replacement: /x }\n",
        )
        .unwrap_err();
        assert_eq!(
            errs[0],
            "t.yaml:8:35: middlewares.t.transform.request[1].replace_header.name: invalid header name \"X A\": use letters, digits and !#$%&'*+-.^_`|~"
        );
        assert!(
            errs[1].starts_with("t.yaml:9:34: middlewares.t.transform.request[2].rewrite_path.regex: invalid regex \"(\""),
            "{errs:?}"
        );
    }

    #[test]
    fn replacements_may_only_name_groups_the_regex_has() {
        assert_eq!(replacement_problem("^/api/(.*)", "/v2/$1"), None);
        assert_eq!(replacement_problem("^/api/(.*)", "/v2/${1}x$$"), None);
        assert_eq!(
            replacement_problem("^/(?P<rest>.*)", "/v2/$rest/${rest}"),
            None
        );
        let two = replacement_problem("^/api/(.*)", "/v2/$2").unwrap();
        assert!(
            two.starts_with("`$2` is not a group of the regex (1 numbered)"),
            "{two}"
        );
        let glued = replacement_problem("^/api/(.*)", "/v2/$1x").unwrap();
        assert!(glued.ends_with("write `${1}`"), "{glued}");
        let named = replacement_problem("^/(?P<rest>.*)", "/$rset").unwrap();
        assert!(named.contains("named: rest"), "{named}");
        // In the compact form the error points at the replacement argument.
        let e = parse_request_ops("RewritePath(`^/(.*)`, `/x/$2`)").unwrap_err();
        assert_eq!(e.column, 23, "{}", e.message);
    }
}
