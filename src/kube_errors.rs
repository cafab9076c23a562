//! Reading the Kubernetes API's answers: the HTTP status of an error, and whether it
//! is worth retrying.

/// The HTTP status of an API error response, if the error is one.
pub fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// 409 Conflict (stale resourceVersion, AlreadyExists) or 404: someone else moved first.
pub fn is_conflict_or_gone(error: &kube::Error) -> bool {
    matches!(status_code(error), Some(404) | Some(409))
}

/// 403: RBAC does not allow the call; retrying will not help until the manifests change.
pub fn is_forbidden(error: &kube::Error) -> bool {
    status_code(error) == Some(403)
}
