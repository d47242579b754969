//! The OpenAPI 3.1 document: paths and operations come from the handlers' `#[utoipa::path]`
//! attributes (through `utoipa-axum`, so a route cannot be served without being listed);
//! the resource schemas come from the config model itself.
//!
//! The config crate describes its model with `schemars` (the same JSON Schema `pylon
//! schema` prints for editors); utoipa cannot read that, so the document is finished as
//! JSON: the model's definitions are generated for JSON Schema 2020-12 (the dialect of
//! OpenAPI 3.1) straight under `#/components/schemas`, and the resource bodies point at
//! them — `Route`, and `Upstream` / `Middleware` with the `name` the API adds.

use std::borrow::Cow;

use serde_json::{json, Value};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ObjectBuilder, RefOr, Schema};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Pylon management API",
        description = "Routes, upstreams and middlewares of a running Pylon, changed live and saved before the answer. Every answer carries the serving config generation as its ETag; send it back as If-Match to refuse a write over someone else's change (412). See docs/admin-api.md."
    ),
    modifiers(&Security),
    security(("bearer" = []), ("api_key" = []), ("basic" = [])),
    tags(
        (name = "routes", description = "Routes, as in the config file's `routes:`"),
        (name = "upstreams", description = "Upstreams and their servers' health"),
        (name = "middlewares", description = "Named middlewares (top-level `middlewares:`)"),
        (name = "config", description = "The whole config"),
        (name = "status", description = "The process"),
    )
)]
struct ApiDoc;

/// The three ways to authenticate, when `admin` sets credentials.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key from `admin.api_keys`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key from `admin.api_keys`",
            ))),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("A user from `admin.basic_auth`"))
                    .build(),
            ),
        );
    }
}

/// The document's fixed part, before the handlers add their paths.
pub fn base() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

/// Placeholders the handlers name; [`finish`] replaces them with the model's schemas.
macro_rules! placeholder {
    ($name:ident, $what:literal) => {
        #[doc = $what]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new().description(Some($what)).into()
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

placeholder!(
    RouteResource,
    "A route, as in the config file's `routes:` list."
);
placeholder!(
    UpstreamResource,
    "An upstream, as under the config file's `upstreams:`, with its name as `name`."
);
placeholder!(
    MiddlewareResource,
    "A named middleware, as under the config file's `middlewares:`, with its name as `name`."
);
placeholder!(ConfigDocument, "A config document, as in a config file.");

/// The finished document as JSON: the handlers' paths plus the config model's schemas.
pub fn finish(openapi: &utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(openapi).unwrap_or_else(|_| json!({}));
    let mut generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let route = generator.subschema_for::<pylon_config::Route>().to_value();
    let upstream = generator
        .subschema_for::<pylon_config::Upstream>()
        .to_value();
    let middleware = generator
        .subschema_for::<pylon_config::Middleware>()
        .to_value();
    let config = generator.subschema_for::<pylon_config::Config>().to_value();
    let definitions = generator.take_definitions(true);
    let named = |schema: &Value, what: &str| -> Value {
        // The model's schema with the `name` the API adds: the definition inlined, so its
        // `additionalProperties: false` knows the extra property.
        let mut schema = resolve(schema, &definitions);
        with_name(&mut schema, what);
        schema
    };
    let resources = [
        ("RouteResource", route),
        ("UpstreamResource", named(&upstream, "upstream")),
        ("MiddlewareResource", named(&middleware, "middleware")),
        ("ConfigDocument", config),
    ];
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in definitions.clone() {
            schemas.entry(name).or_insert(schema);
        }
        for (name, schema) in resources {
            schemas.insert(name.to_string(), schema);
        }
    }
    doc
}

/// `schema`, or the definition it refers to.
fn resolve(schema: &Value, definitions: &serde_json::Map<String, Value>) -> Value {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .and_then(|name| definitions.get(name))
        .unwrap_or(schema)
        .clone()
}

/// Adds a required `name` to an object schema, or to each alternative of a `oneOf`.
fn with_name(schema: &mut Value, what: &str) {
    if let Some(alternatives) = schema.get_mut("oneOf").and_then(Value::as_array_mut) {
        for alternative in alternatives {
            with_name(alternative, what);
        }
        return;
    }
    if let Value::Object(map) = schema {
        if let Some(Value::Object(properties)) = map.get_mut("properties") {
            properties.insert(
                "name".into(),
                json!({"type": "string", "description": format!("The {what}'s name")}),
            );
        }
        match map.get_mut("required").and_then(Value::as_array_mut) {
            Some(required) => required.insert(0, json!("name")),
            None => {
                map.insert("required".into(), json!(["name"]));
            }
        }
    }
}
