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

/// 404 on a create: the namespace does not exist (NamespaceLifecycle answers
/// `namespaces "x" not found` before anything else), a configuration error.
pub fn is_namespace_missing(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 404 && status.message.starts_with("namespaces "),
        _ => false,
    }
}

/// Worth retrying as is: the API server or the path to it had a transient problem.
pub fn is_retryable(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        // Transport-level failures (connection reset, timeout, ...).
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Run a Kubernetes call, retrying transient failures a few times with jittered backoff.
pub async fn with_retries<T, F, Fut>(call: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    retrying(call, is_retryable).await
}

/// Like [`with_retries`], and also on 409: for writes without a precondition (merge
/// patches), where repeating is always safe and a conflict says nothing about the
/// outcome we want.
pub async fn with_retries_on_conflict<T, F, Fut>(call: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    retrying(call, |e| is_retryable(e) || status_code(e) == Some(409)).await
}

async fn retrying<T, F, Fut>(
    mut call: F,
    retry: impl Fn(&kube::Error) -> bool,
) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut delays = crate::domain::retry::Backoff::API_CALL.delays();
    loop {
        match call().await {
            Err(e) if retry(&e) => match delays.next() {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return Err(e),
            },
            other => return other,
        }
    }
}
