//! One attempt of one delivery on its channel: a signed webhook POST, a Slack incoming-webhook
//! POST, or an SMTP conversation. `Ok` only for the receiver's 2xx / the SMTP server's positive
//! completion (250) of the message.

use std::time::Duration;

use hmac::{Hmac, Mac};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::Sha256;

use crate::alert::Alert;
use crate::config::{Channel, Target};
use crate::ledger::Pending;

pub const TIMESTAMP_HEADER: &str = "X-Vtag-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Vtag-Signature";
pub const DELIVERY_HEADER: &str = "X-Vtag-Delivery-Id";
pub const EVENT_TYPE_HEADER: &str = "X-Vtag-Event";

/// `sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The `Message-ID` of a delivery's email.
pub fn message_id(delivery_id: uuid::Uuid) -> String {
    format!("<{delivery_id}@vtag>")
}

pub struct Sender {
    http: reqwest::Client,
    timeout: Duration,
}

impl Sender {
    pub fn new(timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("vtag-herald/", env!("CARGO_PKG_VERSION")))
            // a receiver's redirect is not followed: the signed body goes where it was configured to
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { http, timeout })
    }

    /// One attempt: what the receiver answered (`Ok`: delivered), or why it failed.
    pub async fn attempt(&self, channel: &Channel, delivery: &Pending) -> Result<String, String> {
        let alert: Alert = serde_json::from_str(&delivery.payload).map_err(|e| format!("unreadable stored alert: {e}"))?;
        match &channel.target {
            Target::Webhook { url, secret } => {
                let timestamp = chrono::Utc::now().timestamp().to_string();
                let signature = sign(secret.as_bytes(), &timestamp, delivery.payload.as_bytes());
                let request = self
                    .http
                    .post(url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(TIMESTAMP_HEADER, timestamp)
                    .header(SIGNATURE_HEADER, signature)
                    .header(DELIVERY_HEADER, delivery.delivery_id.to_string())
                    .header(EVENT_TYPE_HEADER, alert.event_type.as_str())
                    .body(delivery.payload.clone());
                answer(request.send().await).await
            }
            Target::Slack { url } => {
                let request = self.http.post(url.clone()).json(&alert.slack());
                answer(request.send().await).await
            }
            Target::Email { host, port, credentials, from, to } => {
                let mut builder = Message::builder()
                    .from(from.clone())
                    .subject(alert.subject())
                    .message_id(Some(message_id(delivery.delivery_id)))
                    .date_now();
                for m in to {
                    builder = builder.to(m.clone());
                }
                if let Some(contact) = &delivery.escalation_contact {
                    match contact.parse::<Mailbox>() {
                        Ok(m) if !to.iter().any(|t| t.email == m.email) => builder = builder.to(m),
                        Ok(_) => {}
                        Err(_) => tracing::warn!(delivery_id = %delivery.delivery_id, contact, "the escalation contact is not an email address; not added"),
                    }
                }
                let message = builder.header(ContentType::TEXT_PLAIN).body(alert.text()).map_err(|e| format!("building the email: {e}"))?;
                let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str()).port(*port).timeout(Some(self.timeout));
                if let Some((user, password)) = credentials {
                    transport = transport.credentials(Credentials::new(user.clone(), password.clone()));
                }
                let sent = tokio::time::timeout(self.timeout * 2, transport.build().send(message)).await;
                match sent {
                    Ok(Ok(response)) => Ok(format!("SMTP {}", response.code())),
                    Ok(Err(e)) => Err(format!("SMTP: {e}")),
                    Err(_) => Err(format!("SMTP: no answer within {:?}", self.timeout * 2)),
                }
            }
        }
    }
}

async fn answer(sent: Result<reqwest::Response, reqwest::Error>) -> Result<String, String> {
    // Errors never repeat the URL: a Slack webhook's URL is its credential.
    let response = sent.map_err(|e| describe(e.without_url()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(format!("HTTP {}", status.as_u16()));
    }
    let body = response.text().await.unwrap_or_default();
    let body: String = body.chars().take(200).collect();
    Err(format!("HTTP {}{}", status.as_u16(), if body.is_empty() { String::new() } else { format!(": {body}") }))
}

/// An error with its causes (reqwest's own message is only the outermost one).
fn describe(e: reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // printf '1700000000.{"hello":"world"}' | openssl dgst -sha256 -hmac whsec_test
        assert_eq!(
            sign(b"whsec_test", "1700000000", br#"{"hello":"world"}"#),
            "sha256=f592bbf3951cfc94e560eecfb5d9dd4da6b0fff2e626235f8ab4b54860925d0b"
        );
        assert_ne!(sign(b"whsec_test", "1700000001", br#"{"hello":"world"}"#), sign(b"whsec_test", "1700000000", br#"{"hello":"world"}"#));
        assert_eq!(message_id(uuid::Uuid::nil()), "<00000000-0000-0000-0000-000000000000@vtag>");
    }
}
