use std::fmt;

/// Why a billing file was refused. Names the row (1 = the first data row; the header is row 0)
/// and the column when there is one, so a FinOps engineer can open the file at the right cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// The data row, when the problem is in one.
    pub row: Option<u64>,
    /// The line of the file where that row starts (rows may span lines when quoted).
    pub line: Option<u64>,
    pub column: Option<String>,
    /// A short machine-readable rule: `required_column`, `number`, `json`, `date`, …
    pub rule: &'static str,
    pub message: String,
}

impl ImportError {
    pub fn file(rule: &'static str, message: impl Into<String>) -> Self {
        Self { row: None, line: None, column: None, rule, message: message.into() }
    }

    pub fn column(column: &str, rule: &'static str, message: impl Into<String>) -> Self {
        Self { row: None, line: None, column: Some(column.to_owned()), rule, message: message.into() }
    }

    pub fn cell(row: u64, line: u64, column: &str, rule: &'static str, message: impl Into<String>) -> Self {
        Self { row: Some(row), line: Some(line), column: Some(column.to_owned()), rule, message: message.into() }
    }

    pub fn row(row: u64, line: u64, rule: &'static str, message: impl Into<String>) -> Self {
        Self { row: Some(row), line: Some(line), column: None, rule, message: message.into() }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.row, &self.column) {
            (Some(row), Some(col)) => write!(f, "row {row}, column {col}: {}", self.message),
            (Some(row), None) => write!(f, "row {row}: {}", self.message),
            (None, Some(col)) => write!(f, "column {col}: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ImportError {}
