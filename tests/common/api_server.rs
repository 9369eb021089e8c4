//! `farewatch serve` for the API tests: a real server on 127.0.0.1 over a
//! test database, and a client that speaks to it over HTTP.

use farewatch::api::{self, ApiConfig, AppState};
use farewatch::store::Store;
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{json, Value};

use super::db::TestDb;

/// The operator's token in every test server.
pub const OPERATOR: &str = "operator-test-token";

/// A running server on 127.0.0.1, stopped when dropped.
pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Server {
    pub async fn start(db: &TestDb, config: ApiConfig) -> Self {
        let store = db.open().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = AppState::new(store.clone(), &config);
        tokio::spawn(async move {
            api::serve(listener, state, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            base,
            client: farewatch::upstream::http::build_client(),
            store,
            _stop: stop,
        }
    }

    /// A server with the [`OPERATOR`] token and no rate limit.
    pub async fn new(db: &TestDb) -> Self {
        Self::start(
            db,
            ApiConfig {
                operator_token: Some(SecretString::from(OPERATOR.to_owned())),
                rate_per_sec: 0.0,
                burst: 1,
            },
        )
        .await
    }

    /// A request with `token` (if any), `key` (if any) and a JSON `body` (if any).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json, headers)
    }

    /// Creates a user with phone +447911123456 as the operator; returns their token.
    pub async fn user(&self, email: &str) -> String {
        self.user_with_phone(email, Some("+447911123456")).await
    }

    /// Creates a user with `phone` (or none) as the operator; returns their token.
    pub async fn user_with_phone(&self, email: &str, phone: Option<&str>) -> String {
        let body = json!({"email": email, "first_name": "Ann", "last_name": "Lee", "phone": phone});
        let (status, json, _) = self
            .call(
                Method::POST,
                "/users",
                Some(OPERATOR),
                Some(&format!("create-{email}")),
                Some(&body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json["token"].as_str().unwrap().to_owned()
    }
}
