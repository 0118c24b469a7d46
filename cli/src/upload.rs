//! The request: the billing file streamed as the body, with the headers the command API reads.

use std::path::Path;
use std::time::Duration;

use futures::stream;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Body, Client, StatusCode, Url};
use tokio::io::AsyncReadExt;

use crate::progress::Progress;

/// Big enough that a multi-GB file is few reads, small enough that progress moves smoothly.
const CHUNK: usize = 256 << 10;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A request with no body is answered at once, or not usefully.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the body is, from the file's name: the server tells CSV, gzip and Parquet apart by it.
pub fn content_type(path: &Path) -> &'static str {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    match extension.as_str() {
        "csv" => "text/csv",
        "gz" => "application/gzip",
        "parquet" => "application/vnd.apache.parquet",
        _ => "application/octet-stream",
    }
}

/// `{api}/api/v1/costs/imports?source=…`, whether or not the API's URL ends with '/'.
pub fn imports_url(api: &str, source: &str) -> anyhow::Result<Url> {
    let mut url = Url::parse(&format!("{}/api/v1/costs/imports", api.trim_end_matches('/')))
        .map_err(|e| anyhow::anyhow!("--api {api:?} is not a URL ({e})"))?;
    // built without TLS (build times): the API is reached over plain HTTP, as `make run` serves it
    if url.scheme() != "http" {
        anyhow::bail!("--api {api:?}: only http:// URLs are supported");
    }
    url.query_pairs_mut().append_pair("source", source);
    Ok(url)
}

pub struct Request<'a> {
    pub url: Url,
    pub token: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub content_type: &'static str,
}

/// The server's answer, whole: it is small (a summary or a problem).
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
}

pub async fn send(request: &Request<'_>, file: tokio::fs::File, len: u64, progress: Progress) -> reqwest::Result<Answer> {
    // No overall timeout: the server answers only after it has read and checked the whole file.
    let client = Client::builder().connect_timeout(CONNECT_TIMEOUT).build()?;
    let mut headers = request.headers();
    // known up front, so the server can refuse a too-large file before it is sent
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    if let Some(key) = request.idempotency_key {
        headers.insert("idempotency-key", HeaderValue::try_from(key).expect("checked when the arguments were read"));
    }
    let body = file_body(file, len, progress);
    Answer::read(client.post(request.url.clone()).headers(headers).body(body).send().await?).await
}

/// Why an upload broke off after it had started, if the server refused it for a reason that has
/// nothing to do with the file (401 expired token, 403, 404 no such route...). Such a refusal
/// comes before the server reads the body, and closing on a client still sending often loses it
/// (a reset), so the same request is asked again with no body. An empty file is refused (422)
/// before anything is recorded, and that answer tells nothing: None then.
pub async fn early_refusal(request: &Request<'_>) -> Option<Answer> {
    let client = Client::builder().connect_timeout(CONNECT_TIMEOUT).timeout(PROBE_TIMEOUT).build().ok()?;
    let response = client.post(request.url.clone()).headers(request.headers()).body(Vec::new()).send().await.ok()?;
    let answer = Answer::read(response).await.ok()?;
    (answer.status.is_client_error() && answer.status != StatusCode::UNPROCESSABLE_ENTITY).then_some(answer)
}

impl Request<'_> {
    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        let mut bearer =
            HeaderValue::try_from(format!("Bearer {}", self.token)).expect("checked first (`token_header_ok`)");
        bearer.set_sensitive(true);
        headers.insert(AUTHORIZATION, bearer);
        headers
    }
}

impl Answer {
    async fn read(response: reqwest::Response) -> reqwest::Result<Self> {
        let status = response.status();
        let header = |name| response.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_owned);
        let content_type = header(CONTENT_TYPE).unwrap_or_default();
        let retry_after = header(RETRY_AFTER);
        let body = response.bytes().await?.to_vec();
        Ok(Answer { status, content_type, retry_after, body })
    }
}

/// A token the Authorization header can carry (visible ASCII, no line breaks).
pub fn token_header_ok(token: &str) -> bool {
    HeaderValue::try_from(format!("Bearer {token}")).is_ok()
}

/// The file read chunk by chunk as hyper asks for it: memory stays at a chunk or two.
fn file_body(file: tokio::fs::File, len: u64, progress: Progress) -> Body {
    let chunks = stream::try_unfold((file, len, progress), |(mut file, left, progress)| async move {
        let mut chunk = vec![0; CHUNK];
        let read = file.read(&mut chunk).await?;
        if read == 0 {
            return Ok(None);
        }
        chunk.truncate(read);
        progress.sent(read as u64);
        let left = left.saturating_sub(read as u64);
        // hyper stops asking once Content-Length bytes are sent: the end of the file is never polled
        if left == 0 {
            progress.uploaded();
        }
        Ok::<_, std::io::Error>(Some((chunk, (file, left, progress))))
    });
    Body::wrap_stream(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_follows_the_extension() {
        assert_eq!(content_type(Path::new("oct.csv")), "text/csv");
        assert_eq!(content_type(Path::new("dir.v2/OCT.CSV")), "text/csv");
        assert_eq!(content_type(Path::new("oct.csv.gz")), "application/gzip");
        assert_eq!(content_type(Path::new("oct.GZ")), "application/gzip");
        assert_eq!(content_type(Path::new("part-0.parquet")), "application/vnd.apache.parquet");
        assert_eq!(content_type(Path::new("export")), "application/octet-stream");
        assert_eq!(content_type(Path::new("export.zip")), "application/octet-stream");
        assert_eq!(content_type(Path::new(".csv")), "application/octet-stream");
    }

    #[test]
    fn imports_url_encodes_the_source() {
        let url = imports_url("http://127.0.0.1:18080/", "oct 2026&more.csv").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:18080/api/v1/costs/imports?source=oct+2026%26more.csv");
        let url = imports_url("http://h:1/vtag", "a.csv").unwrap();
        assert_eq!(url.as_str(), "http://h:1/vtag/api/v1/costs/imports?source=a.csv");
        assert!(imports_url("127.0.0.1:18080", "a").is_err());
        assert!(imports_url("https://vtag.example", "a").unwrap_err().to_string().contains("only http://"));
    }

    #[test]
    fn tokens_with_line_breaks_are_refused() {
        assert!(token_header_ok("eyJhbGciOi.x.y"));
        assert!(!token_header_ok("abc\ndef"));
    }
}
