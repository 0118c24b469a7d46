//! Refusals and failures told to a person: the server's problem+json (RFC 9457) in a few lines,
//! or whatever else came back (a proxy's page, the body limit's plain text).

use serde::Deserialize;

/// The parts of the command API's problem the message uses; anything else is ignored.
#[derive(Debug, Default, Deserialize)]
pub struct Problem {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub errors: Vec<FieldError>,
    /// Where a billing file was refused (1-based data row, text line, column name).
    #[serde(default)]
    pub row: Option<u64>,
    #[serde(default)]
    pub line: Option<u64>,
    #[serde(default)]
    pub column: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
    #[serde(default)]
    pub line: Option<u64>,
}

/// Exit code 1: the request is at fault and the same one would be refused again.
pub const REFUSED: u8 = 1;
/// Exit code 2: the server failed or was not reached; the same request may work later.
pub const FAILED: u8 = 2;

pub fn exit_code(status: u16) -> u8 {
    if status >= 500 {
        FAILED
    } else {
        REFUSED
    }
}

/// The lines to print (each ends with '\n') for a non-2xx answer.
pub fn describe(status: u16, content_type: &str, body: &[u8], retry_after: Option<&str>) -> String {
    let problem = content_type
        .contains("json")
        .then(|| serde_json::from_slice::<Problem>(body).ok())
        .flatten();
    let mut text = match problem {
        Some(problem) => describe_problem(status, &problem),
        None => describe_other(status, content_type, body),
    };
    if let Some(note) = notes(status, retry_after, &text) {
        text.push_str(&format!("note: {note}\n"));
    }
    text
}

fn describe_problem(status: u16, p: &Problem) -> String {
    let title = p.title.clone().unwrap_or_else(|| reason(status).to_owned());
    let mut headline = match &p.detail {
        // a 422's title ("The request has invalid fields") adds nothing to its detail
        Some(detail) if status == 422 => detail.clone(),
        Some(detail) => format!("{title}: {detail}"),
        None => format!("{title} (HTTP {status})"),
    };
    // where in the file, if the detail does not already say it
    let mut place = Vec::new();
    if let Some(row) = p.row.filter(|r| !headline.contains(&format!("row {r}"))) {
        place.push(format!("row {row}"));
    }
    if let Some(line) = p.line.filter(|_| place.is_empty() && !headline.contains("row ")) {
        place.push(format!("line {line}"));
    }
    if let Some(column) = p.column.as_ref().filter(|c| !headline.contains(c.as_str())) {
        place.push(format!("column {column}"));
    }
    if !place.is_empty() {
        headline.push_str(&format!(" ({})", place.join(", ")));
    }
    let mut text = format!("error: {headline}\n");
    // the field errors the detail does not already carry
    for e in p.errors.iter().filter(|e| !headline.contains(&e.message)) {
        match e.line {
            Some(line) => text.push_str(&format!("  {}: {} (line {line})\n", e.field, e.message)),
            None => text.push_str(&format!("  {}: {}\n", e.field, e.message)),
        }
    }
    text
}

fn describe_other(status: u16, content_type: &str, body: &[u8]) -> String {
    let body = String::from_utf8_lossy(body);
    // a proxy's HTML page is markup, not a message; plain text is shown by its first line, cut short
    let first: String = match content_type.contains("html") {
        true => String::new(),
        false => body.trim().lines().next().unwrap_or_default().chars().take(200).collect(),
    };
    if first.is_empty() {
        format!("error: the server answered {status} {}\n", reason(status))
    } else {
        format!("error: the server answered {status} {}: {first}\n", reason(status))
    }
}

/// What to do next, by status; nothing the message already says.
fn notes(status: u16, retry_after: Option<&str>, said: &str) -> Option<String> {
    match status {
        401 => Some("pass a token with the editor role: --token TOKEN or VTAG_TOKEN".to_owned()),
        403 => Some("importing costs needs a token with the editor role".to_owned()),
        413 => Some("the file is larger than the command API accepts (4 GiB): split it by billing period".to_owned()),
        // 503 is the server's word that nothing went wrong with the request itself
        503 => match (said.contains("safe"), retry_after) {
            (false, Some(seconds)) => Some(format!("retrying is safe (the server asks to wait {seconds} s)")),
            (false, None) => Some("retrying is safe".to_owned()),
            (true, Some(seconds)) => Some(format!("the server asks to wait {seconds} s")),
            (true, None) => None,
        },
        _ => None,
    }
}

fn reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROBLEM: &str = "application/problem+json";

    #[test]
    fn a_refused_cell_reads_as_one_line() {
        let body = r#"{"type":"https://vtag.dev/problems/validation","title":"The request has invalid fields","status":422,
            "detail":"the billing file was not imported: row 42, column BilledCost: '12.5x' is not a number",
            "errors":[{"field":"BilledCost","rule":"decimal","message":"'12.5x' is not a number","line":43}],
            "row":42,"line":43,"column":"BilledCost"}"#;
        assert_eq!(
            describe(422, PROBLEM, body.as_bytes(), None),
            "error: the billing file was not imported: row 42, column BilledCost: '12.5x' is not a number\n"
        );
        assert_eq!(exit_code(422), REFUSED);
    }

    #[test]
    fn a_place_the_detail_lacks_is_added() {
        let body = r#"{"title":"The request has invalid fields","status":422,"detail":"the billing file was not imported",
            "errors":[{"field":"BilledCost","rule":"decimal","message":"not a number"}],"row":7,"column":"BilledCost"}"#;
        assert_eq!(
            describe(422, PROBLEM, body.as_bytes(), None),
            "error: the billing file was not imported (row 7, column BilledCost)\n  BilledCost: not a number\n"
        );
    }

    #[test]
    fn other_refusals_keep_their_title_and_say_what_to_do() {
        let body = r#"{"title":"Authentication required","status":401,"detail":"the token has expired"}"#;
        assert_eq!(
            describe(401, PROBLEM, body.as_bytes(), None),
            "error: Authentication required: the token has expired\n\
             note: pass a token with the editor role: --token TOKEN or VTAG_TOKEN\n"
        );
        let body = r#"{"title":"Not allowed","status":403}"#;
        assert_eq!(
            describe(403, PROBLEM, body.as_bytes(), None),
            "error: Not allowed (HTTP 403)\nnote: importing costs needs a token with the editor role\n"
        );
    }

    #[test]
    fn unavailable_says_retrying_is_safe() {
        let body = r#"{"title":"Temporarily unavailable","status":503,"detail":"the cost topic is down"}"#;
        assert_eq!(
            describe(503, PROBLEM, body.as_bytes(), Some("1")),
            "error: Temporarily unavailable: the cost topic is down\n\
             note: retrying is safe (the server asks to wait 1 s)\n"
        );
        // the server's own words are enough
        let body = r#"{"title":"Temporarily unavailable","detail":"the log is down; re-sending the file is safe"}"#;
        assert_eq!(
            describe(503, PROBLEM, body.as_bytes(), None),
            "error: Temporarily unavailable: the log is down; re-sending the file is safe\n"
        );
        assert_eq!(exit_code(503), FAILED);
        assert_eq!(exit_code(500), FAILED);
    }

    #[test]
    fn anything_else_is_shown_by_its_first_line() {
        assert_eq!(
            describe(413, "text/plain; charset=utf-8", b"length limit exceeded", None),
            "error: the server answered 413 Payload Too Large: length limit exceeded\n\
             note: the file is larger than the command API accepts (4 GiB): split it by billing period\n"
        );
        assert_eq!(
            describe(502, "text/html", b"\n<html>\n<body>Bad gateway</body>", None),
            "error: the server answered 502 Bad Gateway\n"
        );
        assert_eq!(describe(404, "application/json", b"", None), "error: the server answered 404 Not Found\n");
    }
}
