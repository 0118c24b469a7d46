//! A tiny JSON client for the APIs under test.

use reqwest::{Client, Method, StatusCode};
use serde_json::Value;

#[derive(Clone)]
pub struct Api {
    client: Client,
    base: String,
    token: Option<String>,
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Api {
    pub fn new(base: impl Into<String>, token: Option<String>) -> Self {
        Self { client: Client::new(), base: base.into(), token }
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(serde_json::to_vec(b).unwrap());
        }
        Self::reply(req.send().await.expect("request sent")).await
    }

    pub async fn raw(&self, method: Method, path: &str, body: &'static str) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base)).header("content-type", "application/json");
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        Self::reply(req.body(body).send().await.expect("request sent")).await
    }

    /// Posts raw bytes (a billing file) with its content type.
    pub async fn upload(&self, path: &str, bytes: Vec<u8>, content_type: &str) -> Reply {
        self.send_bytes(Method::POST, path, bytes, content_type).await
    }

    /// Sends raw bytes (a YAML document, a billing file) with their content type.
    pub async fn send_bytes(&self, method: Method, path: &str, bytes: Vec<u8>, content_type: &str) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base)).header("content-type", content_type);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        Self::reply(req.body(bytes).send().await.expect("request sent")).await
    }

    async fn reply(r: reqwest::Response) -> Reply {
        let status = r.status();
        let content_type = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, content_type, headers, body }
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, Some(body), &[]).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, &[]).await
    }

    pub async fn get_consistent(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, None, &[("x-consistency-token", token)]).await
    }
}

/// A batch of `n` observed AWS resources named `web-server-prod-{i}`, with native tags outside the
/// tag schema: nothing is derived from them, so these resources carry only the virtual tags a test
/// applies (the tagging engine's own tests use generated inventories instead).
pub fn observe_batch(from: usize, n: usize) -> Value {
    let resources: Vec<Value> = (from..from + n)
        .map(|i| {
            serde_json::json!({
                "provider": "aws",
                "resource_id": format!("arn:aws:ec2:us-east-1:123456789012:instance/i-{i:08}"),
                "account_id": "123456789012",
                "region": "us-east-1",
                "resource_type": "ec2:instance",
                "name": format!("web-server-prod-{i:03}"),
                "native_tags": {"aws:cloudformation:stack-name": "PROD-stack", "CreatedBy": "Platform"},
                "metadata": {"instance_type": "m5.large"}
            })
        })
        .collect();
    serde_json::json!({ "resources": resources })
}
