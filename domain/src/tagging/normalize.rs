//! Normalization: native tags, spelled however a cloud or a team spelled them, become canonical tags
//! of the tag schema — and every result says which native tag and which mapping produced it, so
//! "why does this resource carry environment=production?" always has an answer.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;

use super::fx::FxMap;
use super::schema::TagSchema;

/// Prefixes clouds put on keys they define; the rest of the key is what carries meaning.
const PROVIDER_PREFIXES: [&str; 5] = ["aws:", "azure:", "ms:", "gcp:", "goog-"];

/// The normalized form of a key: provider prefix dropped, camelCase split, lower case, and any run
/// of separators (space, `_`, `-`, `.`, `/`, `:`) turned into one `-`. `CostCenter`, `cost_center`
/// and ` Cost Center ` all become `cost-center`.
pub fn key_form(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 4);
    key_form_into(raw, &mut out);
    out
}

/// [`key_form`] into `out` (cleared first).
fn key_form_into(raw: &str, out: &mut String) {
    out.clear();
    if is_in_form(raw) {
        out.push_str(raw);
        return;
    }
    let unprefixed = strip_provider_prefix(raw.trim());
    // Keys are ASCII nearly always; bytes then say everything chars would, without decoding.
    if unprefixed.is_ascii() {
        ascii_key_form(unprefixed.as_bytes(), out);
    } else {
        unicode_key_form(unprefixed, out);
    }
    while out.ends_with('-') {
        out.pop();
    }
}

/// Already a key form, as most keys are: lower-case ASCII words joined by single dashes, without
/// a provider prefix.
fn is_in_form(raw: &str) -> bool {
    // At the start as after a dash: a leading dash is out of form.
    let mut after_dash = true;
    for &b in raw.as_bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' => after_dash = false,
            b'-' if !after_dash => after_dash = true,
            _ => return false,
        }
    }
    !after_dash && !raw.starts_with("goog-")
}

fn strip_provider_prefix(trimmed: &str) -> &str {
    // The prefixes are lower-case ASCII: a byte-wise comparison ignoring ASCII case is exact, and a
    // match ends on a char boundary.
    PROVIDER_PREFIXES
        .iter()
        .find(|p| trimmed.len() > p.len() && trimmed.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
        .map_or(trimmed, |p| &trimmed[p.len()..])
}

/// A word boundary inside camelCase ("costCenter") or after an acronym ("APIKey"): `c` upper case
/// after a lower-case letter or a digit, or after an upper-case letter when a lower-case one follows.
fn is_word_boundary(prev: Option<char>, c: char, next: Option<char>) -> bool {
    c.is_uppercase()
        && prev.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit() || (p.is_uppercase() && next.is_some_and(char::is_lowercase)))
}

fn ascii_key_form(bytes: &[u8], out: &mut String) {
    let char_at = |i: usize| bytes.get(i).map(|b| char::from(*b));
    // Whether a '-' may go next: never first, never twice.
    let mut may_separate = false;
    for (i, &b) in bytes.iter().enumerate() {
        if b.is_ascii_alphanumeric() {
            let c = char::from(b);
            if may_separate && is_word_boundary(i.checked_sub(1).and_then(char_at), c, char_at(i + 1)) {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
            may_separate = true;
        } else if may_separate {
            out.push('-');
            may_separate = false;
        }
    }
}

fn unicode_key_form(unprefixed: &str, out: &mut String) {
    let chars: Vec<char> = unprefixed.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let may_separate = !out.is_empty() && !out.ends_with('-');
        if c.is_alphanumeric() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            if may_separate && is_word_boundary(prev, c, chars.get(i + 1).copied()) {
                out.push('-');
            }
            out.extend(c.to_lowercase());
        } else if may_separate {
            out.push('-');
        }
    }
}

/// The normalized form of a value: trimmed, inner runs of whitespace collapsed to one space.
pub fn value_form(raw: &str) -> String {
    value_form_cow(raw).into_owned()
}

/// [`value_form`], borrowing `raw` when it is already in form (most values are).
pub(crate) fn value_form_cow(raw: &str) -> Cow<'_, str> {
    if is_value_form(raw) {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(raw.split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

/// In form: every whitespace character is a single ' ' between two others.
fn is_value_form(raw: &str) -> bool {
    // At the start as after a space: a leading space is out of form.
    let mut after_space = true;
    for c in raw.chars() {
        if c.is_whitespace() {
            if c != ' ' || after_space {
                return false;
            }
            after_space = true;
        } else {
            after_space = false;
        }
    }
    raw.is_empty() || !after_space
}

/// Calls `f` with `s` in lower case (as `str::to_lowercase`), without allocating for ASCII text
/// of ordinary length — tag values and names, compared case-insensitively per resource.
pub(crate) fn with_lowercase<R>(s: &str, f: impl FnOnce(&str) -> R) -> R {
    const MAX: usize = 128;
    if !s.is_ascii() || s.len() > MAX {
        return f(&s.to_lowercase());
    }
    if !s.bytes().any(|b| b.is_ascii_uppercase()) {
        return f(s);
    }
    let mut buf = [0u8; MAX];
    let lower = &mut buf[..s.len()];
    lower.copy_from_slice(s.as_bytes());
    lower.make_ascii_lowercase();
    f(std::str::from_utf8(lower).expect("ASCII stays UTF-8"))
}

/// How a canonical tag was obtained from a native one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMapping {
    /// The native key is the canonical key, up to form (`Environment` → `environment`).
    Canonical,
    /// The native key is a declared alias (`env` → `environment`).
    Alias,
    /// The key is not in the schema: kept, normalized in form only.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueMapping {
    /// Kept as reported (trimmed).
    Kept,
    /// A declared value alias (`PROD` → `production`).
    Alias,
    /// Matched an allowed value, or lower-cased for a key compared in lower case.
    Case,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedTag {
    pub key: String,
    pub value: String,
    pub native_key: String,
    pub native_value: String,
    pub key_mapping: KeyMapping,
    pub value_mapping: ValueMapping,
    /// False when the key restricts its values and this one is not among them.
    pub allowed: bool,
}

/// Normalizes a resource's native tags. Deterministic: when several native keys map to one canonical
/// key (`env` and `Environment` on the same resource), the one spelled like the canonical key wins,
/// then the alphabetically first native key. Empty values carry nothing and are dropped.
pub fn normalize(schema: &TagSchema, native: &BTreeMap<String, String>) -> BTreeMap<String, NormalizedTag> {
    normalize_borrowed(schema, native, |_| true).into_iter().map(|t| (t.key.to_string(), t.into_owned())).collect()
}

/// A [`NormalizedTag`] borrowing what it can from the schema and the native tags: derivation reads
/// every resource's tags, and copies only what ends up in its result.
#[derive(Debug, Clone)]
pub(crate) struct Normalized<'a> {
    pub key: Cow<'a, str>,
    pub value: Cow<'a, str>,
    pub native_key: &'a str,
    pub native_value: &'a str,
    pub key_mapping: KeyMapping,
    pub value_mapping: ValueMapping,
    pub allowed: bool,
}

impl Normalized<'_> {
    fn into_owned(self) -> NormalizedTag {
        NormalizedTag {
            key: self.key.into_owned(),
            value: self.value.into_owned(),
            native_key: self.native_key.to_owned(),
            native_value: self.native_value.to_owned(),
            key_mapping: self.key_mapping,
            value_mapping: self.value_mapping,
            allowed: self.allowed,
        }
    }
}

/// [`normalize`], borrowed, as a list sorted by key with one tag per key; of the keys outside the
/// schema only those `keep_unknown` accepts (in form). They never share a key with one of the
/// schema's — a form that is a canonical key's finds it — so leaving some out changes no other.
pub(crate) fn normalize_borrowed<'a>(
    schema: &'a TagSchema,
    native: &'a BTreeMap<String, String>,
    keep_unknown: impl Fn(&str) -> bool,
) -> Vec<Normalized<'a>> {
    NATIVE_KEYS.with(|memo| match memo.try_borrow_mut() {
        Ok(mut memo) => {
            if memo.len() >= MEMO_SCHEMAS && !memo.contains_key(&schema.id()) {
                // Schemas of past configuration versions linger here: any one makes room.
                let evicted = *memo.keys().next().expect("full");
                memo.remove(&evicted);
            }
            normalize_with(schema, native, keep_unknown, Some(memo.entry(schema.id()).or_default()))
        }
        Err(_) => normalize_with(schema, native, keep_unknown, None),
    })
}

/// What a native key stands for under a schema.
#[derive(Debug)]
struct NativeKey {
    form: Box<str>,
    /// The schema key, by index.
    index: Option<usize>,
    /// Spelled as the schema key, up to form.
    canonical: bool,
}

impl NativeKey {
    fn of(schema: &TagSchema, raw: &str) -> Self {
        let form = key_form(raw);
        let index = if form.is_empty() { None } else { schema.lookup_form(&form) };
        let canonical = index.is_some_and(|i| form == schema.canonical_form(i));
        Self { form: form.into(), index, canonical }
    }
}

/// Schemas (one per tenant and configuration version) and keys per schema remembered per thread;
/// beyond, one schema is forgotten, or no more keys are remembered. Native keys repeat across
/// resources: a few hundred spellings in a large estate.
const MEMO_SCHEMAS: usize = 64;
const MEMO_KEYS: usize = 1024;

thread_local! {
    /// Per schema (by id), native key → what it stands for: forming and looking up every key of
    /// every resource is most of normalization's work, and its answer never changes.
    static NATIVE_KEYS: RefCell<FxMap<u64, KeyMemo>> = RefCell::new(FxMap::default());
}

#[derive(Debug, Default)]
struct KeyMemo {
    by_raw: FxMap<Box<str>, usize>,
    keys: Vec<NativeKey>,
}

impl KeyMemo {
    fn get(&mut self, schema: &TagSchema, raw: &str) -> Option<&NativeKey> {
        if let Some(&i) = self.by_raw.get(raw) {
            return Some(&self.keys[i]);
        }
        if self.keys.len() >= MEMO_KEYS {
            return None;
        }
        self.by_raw.insert(raw.into(), self.keys.len());
        self.keys.push(NativeKey::of(schema, raw));
        self.keys.last()
    }
}

fn normalize_with<'a>(
    schema: &'a TagSchema,
    native: &'a BTreeMap<String, String>,
    keep_unknown: impl Fn(&str) -> bool,
    mut memo: Option<&mut KeyMemo>,
) -> Vec<Normalized<'a>> {
    let mut out = Vec::with_capacity(native.len());
    for (native_key, native_value) in native {
        let computed;
        let key = match memo.as_deref_mut().and_then(|m| m.get(schema, native_key)) {
            Some(key) => key,
            None => {
                computed = NativeKey::of(schema, native_key);
                &computed
            }
        };
        if key.form.is_empty() || (key.index.is_none() && !keep_unknown(&key.form)) {
            continue;
        }
        let value = value_form_cow(native_value);
        if value.is_empty() {
            continue;
        }
        out.push(match key.index {
            Some(index) => canonical_tag(schema, index, key.canonical, native_key, native_value, value),
            None => Normalized {
                key: Cow::Owned(key.form.to_string()),
                value,
                native_key,
                native_value,
                key_mapping: KeyMapping::Unknown,
                value_mapping: ValueMapping::Kept,
                allowed: true,
            },
        });
    }
    // One tag per key: the canonical spelling first, then — the sort is stable and native keys came
    // in alphabetical order — the first native key.
    out.sort_by(|a, b| a.key.cmp(&b.key).then_with(|| rank(a).cmp(&rank(b))));
    out.dedup_by(|later, kept| later.key == kept.key);
    out
}

fn rank(t: &Normalized<'_>) -> u8 {
    u8::from(t.key_mapping != KeyMapping::Canonical)
}

fn canonical_tag<'a>(
    schema: &'a TagSchema,
    index: usize,
    spelled_canonically: bool,
    native_key: &'a str,
    native_value: &'a str,
    value: Cow<'a, str>,
) -> Normalized<'a> {
    let canonical = &schema.keys()[index];
    let key_mapping = if spelled_canonically { KeyMapping::Canonical } else { KeyMapping::Alias };
    let (value, value_mapping) = with_lowercase(&value, |lower| match schema.known_value(index, lower) {
        Some(known) => {
            let mapping = if known.value == *value { ValueMapping::Kept } else { known.mapping.clone() };
            Some((Cow::Borrowed(known.value.as_str()), mapping))
        }
        None if canonical.lowercase_values && *lower != *value => Some((Cow::Owned(lower.to_owned()), ValueMapping::Case)),
        None => None,
    })
    .unwrap_or((value, ValueMapping::Kept));
    let allowed = canonical.allowed_values.is_empty() || canonical.allowed_values.iter().any(|a| *a == *value);
    Normalized { key: Cow::Borrowed(&canonical.key), value, native_key, native_value, key_mapping, value_mapping, allowed }
}

impl KeyMapping {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Canonical => "canonical",
            Self::Alias => "alias",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Canonical, Self::Alias, Self::Unknown].into_iter().find(|m| m.as_str() == raw)
    }
}

impl ValueMapping {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Kept => "kept",
            Self::Alias => "alias",
            Self::Case => "case",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Kept, Self::Alias, Self::Case].into_iter().find(|m| m.as_str() == raw)
    }
}
