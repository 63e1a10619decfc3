//! A thin Client-Server API client: ruma builds the requests and decodes the responses; reqwest
//! carries them. Errors keep the endpoint, the HTTP status, the Matrix `errcode` and the start of
//! the server's answer, so a failure in the middle of loading a dataset says what the server said.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use ruma::api::auth_scheme::{AuthScheme, SendAccessToken};
use ruma::api::path_builder::{PathBuilder, VersionHistory};
use ruma::api::{IncomingResponseExt, OutgoingRequest, OutgoingRequestExt, SupportedVersions};

/// What a failed call returns.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{endpoint}: cannot build the request: {source}")]
    Build {
        endpoint: String,
        #[source]
        source: BoxError,
    },
    #[error("{endpoint}: {source}")]
    Transport {
        endpoint: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{endpoint}: HTTP {status}{}: {body}", errcode.as_deref().map(|e| format!(" {e}")).unwrap_or_default())]
    Status {
        endpoint: String,
        status: u16,
        errcode: Option<String>,
        /// The start of the response body (at most 512 bytes).
        body: String,
        /// `session` of a User-Interactive Authentication answer, when there is one.
        uia_session: Option<String>,
    },
    #[error("{endpoint}: cannot decode the response: {source}")]
    Decode {
        endpoint: String,
        #[source]
        source: BoxError,
    },
}

use crate::util::BoxError;

/// Extract `errcode` (and `session` for UIA answers) from an error body without a full decode.
pub fn error_fields(body: &[u8]) -> (Option<String>, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Fields {
        errcode: Option<String>,
        session: Option<String>,
    }
    match serde_json::from_slice::<Fields>(body) {
        Ok(f) => (f.errcode, f.session),
        Err(_) => (None, None),
    }
}

/// A user's access token (added where the endpoint asks for one), or none.
fn user_token(token: Option<&str>) -> SendAccessToken<'_> {
    token.map_or(SendAccessToken::None, SendAccessToken::IfRequired)
}

/// Client for one homeserver base URL (always a loopback address in hsbench).
#[derive(Clone)]
pub struct MatrixClient {
    http: reqwest::Client,
    base_url: String,
    versions: SupportedVersions,
}

impl MatrixClient {
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        Self::with_pool(base_url, timeout, 64)
    }

    /// A client that keeps up to `max_idle` idle connections: one per client of a workload,
    /// so thousands of long polls that answer at once do not reconnect.
    pub fn with_pool(
        base_url: &str,
        timeout: Duration,
        max_idle: usize,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .tcp_nodelay(true)
            .no_proxy()
            .pool_max_idle_per_host(max_idle)
            .build()?;
        let versions = SupportedVersions::from_parts(
            &["v1.1".to_string(), "v1.11".to_string()],
            &BTreeMap::new(),
        );
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            versions,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Build the `http::Request` for a ruma request, with a user's access token if given.
    pub fn build<R>(&self, req: R, token: Option<&str>) -> Result<reqwest::Request, CallError>
    where
        R: OutgoingRequest<PathBuilder = VersionHistory>,
        R::Authentication: for<'a> AuthScheme<Input<'a> = SendAccessToken<'a>>,
        R::EndpointError: Send + Sync,
    {
        let access = user_token(token);
        self.build_with(req, access)
    }

    /// Build the `http::Request` for a ruma request with explicit authentication (e.g. an
    /// application service's token).
    pub fn build_with<R>(
        &self,
        req: R,
        access: SendAccessToken<'_>,
    ) -> Result<reqwest::Request, CallError>
    where
        R: OutgoingRequest<PathBuilder = VersionHistory>,
        R::Authentication: for<'a> AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        let endpoint = endpoint_name::<R>();
        let http_req: http::Request<Vec<u8>> = req
            .try_into_http_request(&self.base_url, access, Cow::Borrowed(&self.versions))
            .map_err(|e| CallError::Build {
                endpoint: endpoint.clone(),
                source: e.into(),
            })?;
        reqwest::Request::try_from(http_req).map_err(|e| CallError::Build {
            endpoint,
            source: e.into(),
        })
    }

    /// Send a ruma request and decode its response.
    pub async fn send<R>(
        &self,
        req: R,
        token: Option<&str>,
    ) -> Result<R::IncomingResponse, CallError>
    where
        R: OutgoingRequest<PathBuilder = VersionHistory>,
        R::Authentication: for<'a> AuthScheme<Input<'a> = SendAccessToken<'a>>,
        R::EndpointError: Send + Sync,
    {
        let access = user_token(token);
        self.send_with(req, access).await
    }

    /// Send a ruma request with explicit authentication and decode its response.
    pub async fn send_with<R>(
        &self,
        req: R,
        access: SendAccessToken<'_>,
    ) -> Result<R::IncomingResponse, CallError>
    where
        R: OutgoingRequest<PathBuilder = VersionHistory>,
        R::Authentication: for<'a> AuthScheme<Input<'a> = SendAccessToken<'a>>,
        R::EndpointError: Send + Sync,
    {
        let request = self.build_with(req, access)?;
        self.execute::<R>(request).await
    }

    /// Send a request as `user` through an application service (its token, and `user_id` in
    /// the query string: the Application Service API's identity assertion).
    pub async fn send_as<R>(
        &self,
        req: R,
        appservice_token: &str,
        user: &ruma::UserId,
    ) -> Result<R::IncomingResponse, CallError>
    where
        R: OutgoingRequest<PathBuilder = VersionHistory>,
        R::Authentication: for<'a> AuthScheme<Input<'a> = SendAccessToken<'a>>,
        R::EndpointError: Send + Sync,
    {
        let mut request = self.build_with(req, SendAccessToken::Appservice(appservice_token))?;
        request
            .url_mut()
            .query_pairs_mut()
            .append_pair("user_id", user.as_str());
        self.execute::<R>(request).await
    }

    async fn execute<R>(&self, request: reqwest::Request) -> Result<R::IncomingResponse, CallError>
    where
        R: OutgoingRequest<PathBuilder = VersionHistory>,
        R::EndpointError: Send + Sync,
    {
        let endpoint = endpoint_name::<R>();
        let transport = |source| CallError::Transport {
            endpoint: endpoint.clone(),
            source,
        };
        let resp = self.http.execute(request).await.map_err(transport)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(transport)?;
        if status.as_u16() >= 400 {
            let (errcode, uia_session) = error_fields(&body);
            let cut = body.len().min(512);
            return Err(CallError::Status {
                endpoint,
                status: status.as_u16(),
                errcode,
                body: String::from_utf8_lossy(&body[..cut]).into_owned(),
                uia_session,
            });
        }
        let http_resp = http::Response::builder()
            .status(status)
            .body(body.as_ref())
            .map_err(|e| CallError::Decode {
                endpoint: endpoint.clone(),
                source: e.into(),
            })?;
        R::IncomingResponse::try_from_http_response(http_resp).map_err(|e| CallError::Decode {
            endpoint,
            source: e.into(),
        })
    }
}

/// `POST /_matrix/client/v3/register`-style name of an endpoint, for error messages.
fn endpoint_name<R: OutgoingRequest>() -> String {
    let path = R::PATH_BUILDER.all_paths().last().unwrap_or("?");
    format!("{} {}", R::METHOD, path)
}
