//! A billing file read while it uploads: the request body is handed chunk by chunk to a parser on a
//! blocking thread, so checking a large file overlaps receiving it (and the file is never held in
//! memory whole, unless it is Parquet, whose footer comes last).

use std::io::Read;

use axum::body::{Body, Bytes};
use futures::StreamExt;
use tokio::sync::mpsc;
use vtag_billing::{read_focus, BillingFile};
use vtag_service::Problem;

/// Chunks in flight between the connection and the parser (64 × hyper's ≤ 64 KiB frames).
const QUEUE: usize = 64;

/// Reads `body` (at most `limit` bytes) into a billing file; refuses it whole on the first bad cell.
pub async fn read_billing_file(body: Body, limit: usize) -> Result<BillingFile, Problem> {
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUE);
    let parser = tokio::task::spawn_blocking(move || read_focus(ChannelReader { rx, current: Bytes::new() }, |_| {}));
    let mut stream = body.into_data_stream();
    let mut received = 0usize;
    let mut upload_error = None;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                upload_error = Some(Problem::malformed(format!("the upload broke off: {e}")));
                break;
            }
        };
        received += chunk.len();
        if received > limit {
            upload_error = Some(
                Problem::new(axum::http::StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "Payload too large")
                    .detail(format!("a billing file may be at most {} bytes; split it by billing period", limit)),
            );
            break;
        }
        // The parser stopped early (a bad row): its answer is the one that counts.
        if tx.send(chunk).await.is_err() {
            break;
        }
    }
    drop(tx);
    let parsed = parser.await.map_err(Problem::internal)?;
    if let Some(problem) = upload_error {
        return Err(problem);
    }
    parsed.map_err(super::costs::problem_for_import)
}

/// The uploaded chunks as a `Read`, for the blocking parser.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
