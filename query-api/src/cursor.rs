//! Page cursors: the sort key of a page's last row (two strings: a name and an id), as a JSON pair
//! in URL-safe base64. Opaque to clients; checked when it comes back.

use base64::Engine;
use vtag_service::Problem;

pub(crate) const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn encode(name: &str, id: &str) -> String {
    B64.encode(serde_json::to_vec(&(name, id)).expect("two strings serialize"))
}

/// The pair an [`encode`]d cursor holds; a 422 naming `after` otherwise.
pub fn decode(raw: &str) -> Result<(String, String), Problem> {
    B64.decode(raw)
        .ok()
        .and_then(|b| serde_json::from_slice::<(String, String)>(&b).ok())
        .ok_or_else(|| Problem::invalid_field("after", "cursor", "must be the `next` of an earlier page"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_anything_else_is_refused() {
        assert_eq!(decode(&encode("web-01", "r-1")).unwrap(), ("web-01".to_owned(), "r-1".to_owned()));
        for bad in ["nonsense", &B64.encode(b"[1,2]"), &B64.encode(br#"["a"]"#), &B64.encode(br#"["a","b","c"]"#)] {
            assert_eq!(decode(bad).unwrap_err().errors[0].field, "after", "{bad}");
        }
    }
}
