//! The HTTP surface: handlers (each documented for OpenAPI where it is written), the
//! router, and the layers every `/api/v1` request goes through — rate limit, then
//! authentication, then the handler, then the `ETag` (the serving generation) on the
//! answer, whatever it is.

use std::net::SocketAddr;
use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::edit::{self, Change, IfMatch, Outcome, Write};
use crate::error::{ApiError, ErrorBody};
use crate::openapi::{ConfigDocument, MiddlewareResource, RouteResource, UpstreamResource};
use crate::resource::Kind;
use crate::status::{Status, UpstreamHealth};
use crate::Admin;

type AdminState = State<Arc<Admin>>;

/// Query parameters of a write.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WriteParams {
    /// Validate and compute the changes without applying or saving anything.
    #[serde(default)]
    pub dry_run: bool,
}

/// Query parameters of `GET /api/v1/config`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConfigParams {
    /// `json` (default) or `yaml`; `Accept: application/yaml` works too.
    pub format: Option<String>,
}

/// What an applied (or dry-run) change did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplyReport {
    /// Nothing was applied or saved: this is what the change would do.
    pub dry_run: bool,
    /// The generation serving now (unchanged by a dry run).
    pub generation: u64,
    /// The config equals the running one.
    pub unchanged: bool,
    pub changes: Changes,
    /// Node-local sections the config changes, which apply only after a restart.
    pub needs_restart: Vec<String>,
}

/// The diff between the running config and the new one.
#[derive(Debug, Serialize, ToSchema)]
pub struct Changes {
    /// One line: `routes: +1 ~0 -0; upstreams: api kept`.
    pub summary: String,
    pub routes_added: usize,
    pub routes_changed: usize,
    pub routes_removed: usize,
    /// Each upstream and what happens to it: `kept`, `rebuilt`, `added`, `removed`.
    pub upstreams: std::collections::BTreeMap<String, String>,
    pub middlewares: std::collections::BTreeMap<String, String>,
}

fn report(outcome: &Outcome) -> ApplyReport {
    let a = &outcome.applied;
    ApplyReport {
        dry_run: outcome.dry_run,
        generation: a.generation,
        unchanged: a.unchanged,
        changes: Changes {
            summary: a.summary.to_string(),
            routes_added: a.summary.routes_added,
            routes_changed: a.summary.routes_changed,
            routes_removed: a.summary.routes_removed,
            upstreams: a
                .summary
                .upstreams
                .iter()
                .map(|(n, c)| (n.clone(), c.to_string()))
                .collect(),
            middlewares: a
                .summary
                .middlewares
                .iter()
                .map(|(n, c)| (n.clone(), c.to_string()))
                .collect(),
        },
        needs_restart: a.needs_restart.iter().map(|s| s.to_string()).collect(),
    }
}

/// Runs blocking work (loading, validating, compiling, writing files) off the workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("the request failed: {e}")))?
}

fn write_of(headers: &HeaderMap, params: &WriteParams) -> Write {
    Write {
        if_match: headers
            .get(header::IF_MATCH)
            .map(|v| IfMatch::parse(v.to_str().unwrap_or("\u{0}"))),
        dry_run: params.dry_run,
    }
}

/// A request body in YAML when its `Content-Type` says so (`application/yaml`, `text/yaml`,
/// …), else JSON: `curl -d` labels JSON as a form, and refusing that would only get in the
/// way.
fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let yaml = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.to_ascii_lowercase().contains("yaml"));
    let format = if yaml {
        pylon_config::Format::Yaml
    } else {
        pylon_config::Format::Json
    };
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not UTF-8: {e}")))?;
    pylon_config::parse_value(text, format, FsPath::new("body")).map_err(|errors| {
        ApiError::bad_request("the body does not parse")
            .with_errors(errors.iter().map(ToString::to_string).collect())
    })
}

/// The answer to a resource write: the resource as it now runs, or the dry run's report.
fn resource_answer(admin: &Admin, kind: Kind, outcome: &Outcome, deleted: bool) -> Response {
    if outcome.dry_run {
        return (StatusCode::OK, Json(report(outcome))).into_response();
    }
    let mut response = if deleted {
        StatusCode::NO_CONTENT.into_response()
    } else {
        let name = outcome.name.as_deref().unwrap_or("");
        let current = kind.get(&admin.applier.snapshot().load().config, name);
        let status = if outcome.created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let mut r = (status, Json(current.unwrap_or(Value::Null))).into_response();
        if outcome.created {
            if let Ok(location) =
                HeaderValue::from_str(&format!("/api/v1/{}/{name}", kind.section()))
            {
                r.headers_mut().insert(header::LOCATION, location);
            }
        }
        r
    };
    if let Ok(summary) = HeaderValue::from_str(&outcome.applied.summary.to_string()) {
        response.headers_mut().insert("x-pylon-changes", summary);
    }
    response
}

async fn list(admin: Arc<Admin>, kind: Kind) -> Response {
    Json(kind.list(&admin.applier.snapshot().load().config)).into_response()
}

async fn get(admin: Arc<Admin>, kind: Kind, name: String) -> Result<Response, ApiError> {
    match kind.get(&admin.applier.snapshot().load().config, &name) {
        Some(value) => Ok(Json(value).into_response()),
        None => Err(ApiError::not_found(format!("no {} `{name}`", kind.noun()))),
    }
}

async fn change(
    admin: Arc<Admin>,
    kind: Kind,
    change: Change,
    write: Write,
) -> Result<Response, ApiError> {
    let deleted = matches!(change, Change::Delete(_));
    let worker = admin.clone();
    let outcome = blocking(move || edit::resource(&worker, kind, change, &write)).await?;
    Ok(resource_answer(&admin, kind, &outcome, deleted))
}

/// The handlers of one resource kind; each is a thin call into the functions above, so the
/// OpenAPI document lists every path with its own description.
macro_rules! resource_api {
    ($module:ident, $kind:expr, $tag:tt, $collection:tt, $item:tt, $body:ident) => {
        pub mod $module {
            use super::*;

            /// List them all, as running.
            #[utoipa::path(get, path = $collection, tag = $tag,
                responses((status = 200, description = "Every one, as running", body = [$body]),
                          (status = 401, description = "Credentials missing or wrong", body = ErrorBody)))]
            pub async fn list(State(admin): AdminState) -> Response {
                super::list(admin, $kind).await
            }

            /// Get one by name, as running.
            #[utoipa::path(get, path = $item, tag = $tag,
                params(("name" = String, Path, description = "The name")),
                responses((status = 200, description = "It, as running", body = $body),
                          (status = 404, description = "No such name", body = ErrorBody)))]
            pub async fn get(State(admin): AdminState, Path(name): Path<String>) -> Result<Response, ApiError> {
                super::get(admin, $kind, name).await
            }

            /// Create one (its name in the body). Answered once the change is saved and serving.
            #[utoipa::path(post, path = $collection, tag = $tag, params(WriteParams),
                request_body(description = "JSON or YAML, shaped as in a config file, with the name as `name`",
                             content(($body = "application/json"), ($body = "application/yaml"))),
                responses((status = 201, description = "Created and serving", body = $body),
                          (status = 200, description = "Dry run: what would change", body = ApplyReport),
                          (status = 409, description = "The name exists, or is defined in a file the API does not manage", body = ErrorBody),
                          (status = 412, description = "If-Match names another generation", body = ErrorBody),
                          (status = 422, description = "The config would be invalid: every error listed", body = ErrorBody)))]
            pub async fn create(State(admin): AdminState, Query(params): Query<WriteParams>,
                                headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
                let body = parse_body(&headers, &body)?;
                super::change(admin, $kind, Change::Create(body), write_of(&headers, &params)).await
            }

            /// Create or replace one.
            #[utoipa::path(put, path = $item, tag = $tag,
                params(("name" = String, Path, description = "The name"), WriteParams),
                request_body(description = "The whole resource; `name` may be left out",
                             content(($body = "application/json"), ($body = "application/yaml"))),
                responses((status = 200, description = "Replaced and serving", body = $body),
                          (status = 201, description = "Created and serving", body = $body),
                          (status = 409, description = "Defined in a file the API does not manage", body = ErrorBody),
                          (status = 412, description = "If-Match names another generation", body = ErrorBody),
                          (status = 422, description = "The config would be invalid", body = ErrorBody)))]
            pub async fn replace(State(admin): AdminState, Path(name): Path<String>,
                                 Query(params): Query<WriteParams>, headers: HeaderMap,
                                 body: Bytes) -> Result<Response, ApiError> {
                let body = parse_body(&headers, &body)?;
                super::change(admin, $kind, Change::Replace(name, body), write_of(&headers, &params)).await
            }

            /// Change some fields: a JSON merge patch (RFC 7396; `null` removes a field).
            #[utoipa::path(patch, path = $item, tag = $tag,
                params(("name" = String, Path, description = "The name"), WriteParams),
                request_body(description = "The fields to change",
                             content((Object = "application/merge-patch+json"), (Object = "application/json"), (Object = "application/yaml"))),
                responses((status = 200, description = "Changed and serving", body = $body),
                          (status = 404, description = "No such name", body = ErrorBody),
                          (status = 412, description = "If-Match names another generation", body = ErrorBody),
                          (status = 422, description = "The config would be invalid", body = ErrorBody)))]
            pub async fn patch(State(admin): AdminState, Path(name): Path<String>,
                               Query(params): Query<WriteParams>, headers: HeaderMap,
                               body: Bytes) -> Result<Response, ApiError> {
                let body = parse_body(&headers, &body)?;
                super::change(admin, $kind, Change::Patch(name, body), write_of(&headers, &params)).await
            }

            /// Delete one.
            #[utoipa::path(delete, path = $item, tag = $tag,
                params(("name" = String, Path, description = "The name"), WriteParams),
                responses((status = 204, description = "Deleted; the config without it is serving"),
                          (status = 404, description = "No such name", body = ErrorBody),
                          (status = 409, description = "Defined in a file the API does not manage", body = ErrorBody),
                          (status = 412, description = "If-Match names another generation", body = ErrorBody),
                          (status = 422, description = "Something still refers to it", body = ErrorBody)))]
            pub async fn delete(State(admin): AdminState, Path(name): Path<String>,
                                Query(params): Query<WriteParams>, headers: HeaderMap) -> Result<Response, ApiError> {
                super::change(admin, $kind, Change::Delete(name), write_of(&headers, &params)).await
            }
        }
    };
}

resource_api!(
    routes_api,
    Kind::Route,
    "routes",
    "/api/v1/routes",
    "/api/v1/routes/{name}",
    RouteResource
);
resource_api!(
    upstreams_api,
    Kind::Upstream,
    "upstreams",
    "/api/v1/upstreams",
    "/api/v1/upstreams/{name}",
    UpstreamResource
);
resource_api!(
    middlewares_api,
    Kind::Middleware,
    "middlewares",
    "/api/v1/middlewares",
    "/api/v1/middlewares/{name}",
    MiddlewareResource
);

/// The health of each server of an upstream, and why.
#[utoipa::path(get, path = "/api/v1/upstreams/{name}/health", tag = "upstreams",
    params(("name" = String, Path, description = "The upstream")),
    responses((status = 200, description = "Each server's state", body = UpstreamHealth),
              (status = 404, description = "No such upstream", body = ErrorBody)))]
pub async fn upstream_health(
    State(admin): AdminState,
    Path(name): Path<String>,
) -> Result<Json<UpstreamHealth>, ApiError> {
    let snapshot = admin.applier.snapshot().load_full();
    match snapshot.upstreams.get(&name) {
        Some(pool) => Ok(Json(crate::status::health(&name, pool))),
        None => Err(ApiError::not_found(format!("no upstream `{name}`"))),
    }
}

/// Version, uptime, the serving generation, listeners, and the last reload (with its
/// errors when it was refused).
#[utoipa::path(get, path = "/api/v1/status", tag = "status",
    responses((status = 200, description = "The process and its config", body = Status)))]
pub async fn status(State(admin): AdminState) -> Result<Json<Status>, ApiError> {
    // Off the workers: it reads the API file to tell whether writes are possible.
    blocking(move || Ok(Json(crate::status::status(&admin)))).await
}

/// The whole running config (without the `admin` section), as JSON or YAML.
#[utoipa::path(get, path = "/api/v1/config", tag = "config", params(ConfigParams),
    responses((status = 200, description = "The running config",
               content((ConfigDocument = "application/json"), (ConfigDocument = "application/yaml")))))]
pub async fn get_config(
    State(admin): AdminState,
    Query(params): Query<ConfigParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let doc = edit::shown_config(&admin.applier.snapshot().load().config);
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let yaml = match params.format.as_deref() {
        Some("yaml") => true,
        Some("json") => false,
        None => accept.contains("yaml"),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown format {other:?}: use json or yaml"
            )))
        }
    };
    Ok(if yaml {
        (
            [(header::CONTENT_TYPE, "application/yaml")],
            pylon_config::to_yaml(&doc),
        )
            .into_response()
    } else {
        Json(doc).into_response()
    })
}

/// Replace the config the API manages (the whole file, or the API's file of a config
/// directory) with this document. `?dry_run=true` only validates and reports the diff.
#[utoipa::path(put, path = "/api/v1/config", tag = "config", params(WriteParams),
    request_body(description = "A config document, as GET returns it",
                 content((ConfigDocument = "application/json"), (ConfigDocument = "application/yaml"))),
    responses((status = 200, description = "Applied and saved (or, for a dry run, what would change)", body = ApplyReport),
              (status = 409, description = "Changes what the API does not manage, or the stored config does not load", body = ErrorBody),
              (status = 412, description = "If-Match names another generation", body = ErrorBody),
              (status = 422, description = "Invalid: every error listed", body = ErrorBody)))]
pub async fn put_config(
    State(admin): AdminState,
    Query(params): Query<WriteParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ApplyReport>, ApiError> {
    let body = parse_body(&headers, &body)?;
    let write = write_of(&headers, &params);
    let outcome = blocking(move || edit::config(&admin, body, &write)).await?;
    Ok(Json(report(&outcome)))
}

/// Rate limit, then credentials: before any handler.
async fn guard(
    State(admin): AdminState,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(limiter) = &admin.limiter {
        if let Err(wait) = limiter.take(peer.ip(), Instant::now()) {
            let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too many requests");
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            e.header = Some(Box::new((
                header::RETRY_AFTER,
                HeaderValue::from(secs.max(1)),
            )));
            return e.into_response();
        }
    }
    let headers = request.headers().clone();
    let checked = if admin.auth.needs_blocking(&headers) {
        let worker = admin.clone();
        blocking(move || worker.auth.check(&headers)).await
    } else {
        admin.auth.check(&headers)
    };
    match checked {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// Every answer carries the serving generation as its `ETag`.
async fn etag(State(admin): AdminState, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let generation = admin.applier.snapshot().load().generation;
    if let Ok(value) = HeaderValue::from_str(&format!("\"{generation}\"")) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// The `/api/v1` router and the OpenAPI document built from the same handlers.
pub fn router(admin: Arc<Admin>) -> (axum::Router, utoipa::openapi::OpenApi) {
    let (router, openapi) = OpenApiRouter::with_openapi(crate::openapi::base())
        .routes(routes!(routes_api::list, routes_api::create))
        .routes(routes!(
            routes_api::get,
            routes_api::replace,
            routes_api::patch,
            routes_api::delete
        ))
        .routes(routes!(upstreams_api::list, upstreams_api::create))
        .routes(routes!(
            upstreams_api::get,
            upstreams_api::replace,
            upstreams_api::patch,
            upstreams_api::delete
        ))
        .routes(routes!(upstream_health))
        .routes(routes!(middlewares_api::list, middlewares_api::create))
        .routes(routes!(
            middlewares_api::get,
            middlewares_api::replace,
            middlewares_api::patch,
            middlewares_api::delete
        ))
        .routes(routes!(get_config, put_config))
        .routes(routes!(status))
        .split_for_parts();
    let router = router
        .fallback(|| async { ApiError::not_found("no such endpoint: see /api/v1/openapi.json") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed here: see /api/v1/openapi.json",
            )
        })
        .layer(axum::middleware::from_fn_with_state(admin.clone(), guard))
        .layer(axum::middleware::from_fn_with_state(admin.clone(), etag))
        .layer(axum::extract::DefaultBodyLimit::max(
            usize::try_from(pylon_config::MAX_FILE_BYTES).unwrap_or(usize::MAX),
        ))
        .with_state(admin);
    (router, openapi)
}
