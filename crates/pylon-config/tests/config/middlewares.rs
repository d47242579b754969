//! The middleware pipeline's config: named and inline instances (one key, the type),
//! references that must resolve, routes answered by middlewares alone, error pages.

use pylon_config::middleware::{Headers, RequestId, ServerHeader};
use pylon_config::{Middleware, MiddlewareRef};

use super::{errors, yaml};

const BASE: &str = "listeners: [{ name: web, address: \"127.0.0.1:8080\" }]\nupstreams: { app: { servers: [\"127.0.0.1:9000\"] } }\n";

#[test]
fn named_and_inline_middlewares() {
    let config = yaml(&format!(
        "{BASE}middlewares:\n  ids:\n    request_id: {{ header: X-Trace }}\n  plain:\n    request_id:\nroutes:\n  - name: api\n    rule: \"PathPrefix(`/api`)\"\n    upstream: app\n    middlewares: [ids, {{ headers: {{ server: off }} }}, {{ request_id: {{}} }}]\n"
    ));
    assert_eq!(
        config.middlewares["ids"],
        Middleware::RequestId(RequestId {
            header: "X-Trace".into(),
            ..RequestId::default()
        })
    );
    // A type written with nothing after it means "all defaults".
    assert_eq!(
        config.middlewares["plain"],
        Middleware::RequestId(RequestId::default())
    );
    let list = &config.routes[0].middlewares;
    assert_eq!(list[0], MiddlewareRef::Named("ids".into()));
    assert_eq!(
        list[1],
        MiddlewareRef::Inline(Box::new(Middleware::Headers(Headers {
            server: ServerHeader::Off,
            ..Headers::default()
        })))
    );
    assert_eq!(
        list[2],
        MiddlewareRef::Inline(Box::new(Middleware::RequestId(RequestId::default())))
    );
}

#[test]
fn unknown_type_unknown_name_and_two_keys_are_located() {
    let errs = errors(&format!(
        "{BASE}middlewares:\n  a:\n    corz: {{}}\n  b:\n    cors: {{}}\n    headers: {{}}\nroutes:\n  - name: api\n    rule: \"PathPrefix(`/`)\"\n    upstream: app\n    middlewares: [idz]\n  - name: web\n    rule: \"PathPrefix(`/w`)\"\n    upstream: app\n    middlewares: [{{ request_idd: {{}} }}]\n"
    ));
    let all = errs.join("\n");
    assert!(
        all.contains("t.yaml:5:5: middlewares.a.corz: unknown value `corz`"),
        "{all}"
    );
    assert!(all.contains("did you mean `cors`?"), "{all}");
    assert!(
        all.contains("t.yaml:7:5: middlewares.b: expected a map with exactly one key, the type, found 2 keys"),
        "{all}"
    );
    assert!(
        all.contains("t.yaml:13:19: routes[0].middlewares[0]: unknown middleware `idz`"),
        "{all}"
    );
    assert!(
        all.contains(
            "t.yaml:17:21: routes[1].middlewares[0].request_idd: unknown value `request_idd`"
        ),
        "{all}"
    );
}

#[test]
fn a_route_without_target_needs_an_answering_middleware() {
    let errs = errors(&format!(
        "{BASE}routes:\n  - name: api\n    rule: \"PathPrefix(`/`)\"\n    middlewares: [{{ request_id: {{}} }}]\n"
    ));
    assert!(errs[0].contains("a route needs a target"), "{errs:?}");
    let config = yaml(&format!(
        "{BASE}routes:\n  - name: mock\n    rule: \"PathPrefix(`/`)\"\n    middlewares: [{{ respond: {{ status: 204 }} }}]\n"
    ));
    assert!(config.routes[0].upstream.is_none());
}

#[test]
fn error_page_keys_are_statuses_or_classes() {
    let config = yaml(&format!(
        "{BASE}error_pages:\n  \"404\": {{ body: \"gone\" }}\n  5xx: {{ body: \"down\", content_type: text/plain }}\n"
    ));
    assert_eq!(config.error_pages.len(), 2);
    let errs = errors(&format!("{BASE}error_pages:\n  \"200\": {{ body: x }}\n"));
    assert!(
        errs[0].starts_with("t.yaml:4:3: error_pages.200: expected a status from 400 to 599"),
        "{errs:?}"
    );
}

#[test]
fn template_errors_point_at_the_character() {
    let errs = errors(&format!(
        "{BASE}middlewares:\n  h:\n    headers: {{ request: {{ set: {{ X-Who: \"ip={{clent_ip}}\" }} }} }}\n"
    ));
    // The value's content starts at column 42; the brace is its fourth character.
    assert!(
        errs[0].starts_with("t.yaml:5:45: middlewares.h.headers.request.set.X-Who: unknown variable `{clent_ip}`, did you mean `{client_ip}`?"),
        "{errs:?}"
    );
}
