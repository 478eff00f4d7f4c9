//! Errors of the registry's REST API, in Confluent's shape:
//! `{"error_code": 40401, "message": "..."}` with the HTTP status being the
//! first three digits of the code. Clients branch on these codes (the Python
//! client raises `SchemaRegistryError` carrying them), so they must match
//! Confluent's exactly. Every code is built here, in one place.

use super::compat::{Incompatibility, Level};
use super::state::{VersionSpec, describe_problem};

/// A REST API failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status to answer with.
    pub status: u16,
    pub code: u32,
    pub message: String,
}

fn e(status: u16, code: u32, message: String) -> ApiError {
    ApiError {
        status,
        code,
        message,
    }
}

impl ApiError {
    pub fn subject_not_found(subject: &str) -> Self {
        e(404, 40401, format!("Subject '{subject}' not found."))
    }

    pub fn version_not_found(subject: &str, spec: VersionSpec) -> Self {
        let v = match spec {
            VersionSpec::Latest => "latest".to_string(),
            VersionSpec::Number(n) => n.to_string(),
        };
        e(
            404,
            40402,
            format!("Version {v} not found for subject '{subject}'."),
        )
    }

    pub fn schema_not_found(id: u32) -> Self {
        e(404, 40403, format!("Schema {id} not found"))
    }

    pub fn schema_id_not_found(raw: &str) -> Self {
        e(404, 40403, format!("Schema {raw} not found"))
    }

    pub fn schema_not_found_under_subject() -> Self {
        e(404, 40403, "Schema not found".into())
    }

    pub fn subject_soft_deleted(subject: &str) -> Self {
        e(
            404,
            40404,
            format!(
                "Subject '{subject}' was soft deleted. Set permanent=true to delete permanently"
            ),
        )
    }

    pub fn subject_not_soft_deleted(subject: &str) -> Self {
        e(
            404,
            40405,
            format!("Subject '{subject}' was not deleted first before being permanently deleted"),
        )
    }

    pub fn version_soft_deleted(subject: &str, version: u32) -> Self {
        e(
            404,
            40406,
            format!(
                "Subject '{subject}' Version {version} was soft deleted. Set permanent=true to \
                 delete permanently"
            ),
        )
    }

    pub fn version_not_soft_deleted(subject: &str, version: u32) -> Self {
        e(
            404,
            40407,
            format!(
                "Subject '{subject}' Version {version} was not deleted first before being \
                 permanently deleted"
            ),
        )
    }

    pub fn subject_level_not_configured(subject: &str) -> Self {
        e(
            404,
            40408,
            format!("Subject '{subject}' does not have subject-level compatibility configured"),
        )
    }

    pub fn incompatible(subject: &str, level: Level, problems: &[(u32, Incompatibility)]) -> Self {
        let details: Vec<String> = problems
            .iter()
            .map(|(v, p)| describe_problem(*v, p))
            .collect();
        e(
            409,
            409,
            format!(
                "Schema being registered is incompatible with an earlier schema for subject \
                 \"{subject}\", details: [{}, {{compatibility: '{}'}}]",
                details.join(", "),
                level.as_str()
            ),
        )
    }

    pub fn invalid_schema(message: String) -> Self {
        e(422, 42201, message)
    }

    /// Confluent refuses to delete a version another schema refers to.
    pub fn referenced(subject: &str, version: u32) -> Self {
        e(
            422,
            42206,
            format!(
                "One or more references exist to the schema {{subject={subject},version={version}}}: \
                 delete the referring schemas first"
            ),
        )
    }

    pub fn invalid_version(raw: &str) -> Self {
        e(
            422,
            42202,
            format!(
                "The specified version '{raw}' is not a valid version id. Allowed values are \
                 between [1, 2^31-1] and the string \"latest\""
            ),
        )
    }

    pub fn invalid_compatibility_level(raw: &str) -> Self {
        e(
            422,
            42203,
            format!(
                "Invalid compatibility level '{raw}'. Valid values are none, backward, forward, \
                 full, backward_transitive, forward_transitive, and full_transitive"
            ),
        )
    }

    pub fn invalid_mode(raw: &str) -> Self {
        e(
            422,
            42204,
            format!("Invalid mode '{raw}': Switchyard's registry is always READWRITE"),
        )
    }

    /// A body that is JSON but not the expected object.
    pub fn unprocessable(message: String) -> Self {
        e(422, 422, message)
    }

    /// A body that is not JSON at all.
    pub fn malformed(message: String) -> Self {
        e(400, 400, message)
    }

    pub fn unsupported_media_type(ct: &str) -> Self {
        e(
            415,
            415,
            format!(
                "Unsupported content type '{ct}': send application/vnd.schemaregistry.v1+json, \
                 application/vnd.schemaregistry+json or application/json"
            ),
        )
    }

    pub fn not_found_route(path: &str) -> Self {
        e(404, 404, format!("HTTP 404 Not Found: {path}"))
    }

    pub fn method_not_allowed() -> Self {
        e(405, 405, "HTTP 405 Method Not Allowed".into())
    }

    pub fn store(message: String) -> Self {
        e(500, 50001, message)
    }

    /// Code of [`ApiError::changed_elsewhere`].
    pub const CHANGED_ELSEWHERE: u32 = 50003;

    /// On a cluster: another gateway changed the registry while this change
    /// was being written. Nothing of this one was stored.
    pub fn changed_elsewhere() -> Self {
        e(
            503,
            Self::CHANGED_ELSEWHERE,
            "The registry was changed through another gateway at the same moment; nothing of \
             this request was stored: send it again"
                .into(),
        )
    }

    pub fn internal(message: String) -> Self {
        e(500, 50001, message)
    }
}
