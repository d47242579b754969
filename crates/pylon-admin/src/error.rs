//! Every failure of the API, mapped to its status in one place, in Pylon's shared error
//! format: `{"error", "status"}` plus `errors`, the list of problems (each config error as
//! `file:line:column: key.path: message` when it is in a file on disk, `key.path: message`
//! when it is in what the request sent).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A failed request.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub errors: Vec<String>,
    /// `WWW-Authenticate` for 401, `Retry-After` for 429 (boxed: errors travel in every
    /// `Result` of the write path, and a header pair is most of their size).
    pub header: Option<Box<(header::HeaderName, HeaderValue)>>,
}

/// The body of an error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
    /// The HTTP status, repeated.
    pub status: u16,
    /// Each problem found (validation errors), when there are several to fix.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            errors: Vec::new(),
            header: None,
        }
    }

    pub fn with_errors(mut self, errors: Vec<String>) -> ApiError {
        self.errors = errors;
        self
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    /// The config the request would produce is invalid.
    pub fn invalid(errors: Vec<String>) -> ApiError {
        let message = format!(
            "invalid config: {} error(s), nothing was changed",
            errors.len()
        );
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message).with_errors(errors)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// `If-Match` names another generation than the one serving.
    pub fn stale(current: u64) -> ApiError {
        ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            format!(
                "the config changed: generation {current} is serving (see the ETag); read it again and retry"
            ),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
            status: self.status.as_u16(),
            errors: self.errors,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(pair) = self.header {
            let (name, value) = *pair;
            response.headers_mut().insert(name, value);
        }
        response
    }
}
