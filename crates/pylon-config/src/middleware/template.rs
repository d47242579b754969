//! Values with request variables in single braces: `"{client_ip}"`, `"id={request_id}"`,
//! `"{header.X-Tenant}"`. `{{` and `}}` write a literal brace; `${VAR}` is environment
//! substitution, done earlier, at load time.
//!
//! The variable names are the access log's, so one vocabulary serves transforms, headers
//! and logs. Parsed once at load; the runtime renders the parts without re-parsing.

use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::de::{did_you_mean, error_at_column};

/// A request variable a template may use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TemplateVar {
    /// `{client_ip}`: the client's address (after trusted proxies, where configured).
    ClientIp,
    /// `{request_id}`: the request id (the `request_id` middleware's, or the incoming one).
    RequestId,
    /// `{host}`: the request's host, without port.
    Host,
    /// `{path}`: the request path as received, without the query.
    Path,
    /// `{query}`: the query string as received, without `?`; empty when none.
    Query,
    /// `{method}`: the request method.
    Method,
    /// `{scheme}`: `http` or `https`, as the client connected.
    Scheme,
    /// `{route}`: the name of the matched route.
    Route,
    /// `{consumer}`: who an auth middleware authenticated the request as (empty before).
    Consumer,
    /// `{header.NAME}`: the request header NAME (first value; empty when absent). The name
    /// is stored lowercase.
    Header(String),
}

/// The plain variable names, for messages and did-you-mean hints.
pub const TEMPLATE_VARS: [&str; 9] = [
    "client_ip",
    "request_id",
    "host",
    "path",
    "query",
    "method",
    "scheme",
    "route",
    "consumer",
];

impl TemplateVar {
    pub(crate) fn parse(name: &str) -> Result<TemplateVar, String> {
        Ok(match name {
            "client_ip" => TemplateVar::ClientIp,
            "request_id" => TemplateVar::RequestId,
            "host" => TemplateVar::Host,
            "path" => TemplateVar::Path,
            "query" => TemplateVar::Query,
            "method" => TemplateVar::Method,
            "scheme" => TemplateVar::Scheme,
            "route" => TemplateVar::Route,
            "consumer" => TemplateVar::Consumer,
            _ => {
                if let Some(header) = name.strip_prefix("header.") {
                    if !header.is_empty() && header.bytes().all(crate::validate::is_tchar) {
                        return Ok(TemplateVar::Header(header.to_ascii_lowercase()));
                    }
                    return Err(format!("invalid header name {header:?} in `{{{name}}}`"));
                }
                let mut m = format!("unknown variable `{{{name}}}`");
                if let Some(hint) = did_you_mean(name, TEMPLATE_VARS) {
                    m.push_str(&format!(", did you mean `{{{hint}}}`?"));
                } else {
                    m.push_str(&format!(
                        " (known: {}, header.NAME; write `{{{{` for a literal brace)",
                        TEMPLATE_VARS.join(", ")
                    ));
                }
                return Err(m);
            }
        })
    }

    pub(crate) fn name(&self) -> String {
        match self {
            TemplateVar::ClientIp => "client_ip".into(),
            TemplateVar::RequestId => "request_id".into(),
            TemplateVar::Host => "host".into(),
            TemplateVar::Path => "path".into(),
            TemplateVar::Query => "query".into(),
            TemplateVar::Method => "method".into(),
            TemplateVar::Scheme => "scheme".into(),
            TemplateVar::Route => "route".into(),
            TemplateVar::Consumer => "consumer".into(),
            TemplateVar::Header(h) => format!("header.{h}"),
        }
    }
}

/// A piece of a template over variables of type `V`: literal text or a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part<V> {
    Literal(String),
    Var(V),
}

/// A piece of a request-variable template.
pub type TemplatePart = Part<TemplateVar>;

/// Splits `source` into literal text and `{name}` variables read by `parse_var`; `{{` and
/// `}}` are literal braces. An error carries the 1-based character column it is about.
/// Shared by request-variable templates and access-log templates, which differ only in
/// the variables they know.
pub(crate) fn parse_parts<V>(
    source: &str,
    parse_var: impl Fn(&str) -> Result<V, String>,
) -> Result<Vec<Part<V>>, (usize, String)> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut chars = source.char_indices().peekable();
    let column_of = |byte: usize| source[..byte].chars().count() + 1;
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|p| p.1) == Some('{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek().map(|p| p.1) == Some('}') => {
                chars.next();
                literal.push('}');
            }
            '{' => {
                let rest = &source[i + 1..];
                let Some(end) = rest.find('}') else {
                    return Err((
                        column_of(i),
                        "unclosed `{`: close the variable with `}`, or write `{{` for a literal brace".into(),
                    ));
                };
                let name = &rest[..end];
                let var = parse_var(name).map_err(|message| (column_of(i), message))?;
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Var(var));
                // Skip the name and the closing brace.
                for _ in 0..name.chars().count() + 1 {
                    chars.next();
                }
            }
            '}' => {
                return Err((
                    column_of(i),
                    "unmatched `}`: write `}}` for a literal brace".into(),
                ))
            }
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    Ok(parts)
}

/// A parsed template. `Display` gives back a source that parses to the same template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<TemplatePart>,
}

/// A template that does not parse: what is wrong, at which 1-based character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub column: usize,
    pub message: String,
}

impl Template {
    /// Parses `source`.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        parse_parts(source, TemplateVar::parse)
            .map(|parts| Template { parts })
            .map_err(|(column, message)| TemplateError { column, message })
    }

    /// A template of fixed text, no variables.
    pub fn literal(text: &str) -> Template {
        let parts = if text.is_empty() {
            Vec::new()
        } else {
            vec![TemplatePart::Literal(text.to_string())]
        };
        Template { parts }
    }

    /// The pieces, in order.
    pub fn parts(&self) -> &[TemplatePart] {
        &self.parts
    }

    /// The text, when the template has no variables.
    pub fn as_literal(&self) -> Option<String> {
        self.parts
            .iter()
            .map(|p| match p {
                TemplatePart::Literal(l) => Some(l.as_str()),
                TemplatePart::Var(_) => None,
            })
            .collect()
    }

    /// Every literal piece, for checks such as "printable ASCII in a header value".
    pub fn literals(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            TemplatePart::Literal(l) => Some(l.as_str()),
            TemplatePart::Var(_) => None,
        })
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                TemplatePart::Literal(l) => {
                    f.write_str(&l.replace('{', "{{").replace('}', "}}"))?
                }
                TemplatePart::Var(v) => write!(f, "{{{}}}", v.name())?,
            }
        }
        Ok(())
    }
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Template;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, with request variables such as `{client_ip}`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Template, E> {
                Template::parse(v).map_err(|e| error_at_column(e.column, e.message))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Template, E> {
                Ok(Template::literal(&v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Template, E> {
                Ok(Template::literal(&v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Template, E> {
                Ok(Template::literal(&v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Template {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Template".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Text with request variables in single braces: {client_ip}, {request_id}, {host}, {path}, {query}, {method}, {scheme}, {route}, {header.NAME}. `{{` writes a literal brace.",
            "type": ["string", "number", "boolean"]
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn variables_literals_and_escaped_braces() {
        let t = Template::parse("id={request_id} from {header.X-Tenant} {{x}}").unwrap();
        assert_eq!(
            t.parts(),
            &[
                TemplatePart::Literal("id=".into()),
                TemplatePart::Var(TemplateVar::RequestId),
                TemplatePart::Literal(" from ".into()),
                TemplatePart::Var(TemplateVar::Header("x-tenant".into())),
                TemplatePart::Literal(" {x}".into()),
            ]
        );
        assert_eq!(
            t.to_string(),
            "id={request_id} from {header.x-tenant} {{x}}"
        );
        assert_eq!(Template::parse(&t.to_string()).unwrap(), t);
        assert_eq!(
            Template::parse("plain").unwrap().as_literal().as_deref(),
            Some("plain")
        );
    }

    #[test]
    fn errors_name_the_column() {
        let e = Template::parse("ab{clent_ip}").unwrap_err();
        assert_eq!(e.column, 3);
        assert!(
            e.message.contains("did you mean `{client_ip}`"),
            "{}",
            e.message
        );
        assert_eq!(Template::parse("é{host").unwrap_err().column, 2);
        assert_eq!(Template::parse("a}b").unwrap_err().column, 2);
        assert!(Template::parse("{header.}").is_err());
    }
}
