//! Validated names that end up in URLs and cache paths: accession numbers and document file
//! names. Cache paths are built only from these types, never from raw input.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::EdgarError;

/// An EDGAR accession number in its dashed form, `0000320193-24-000123`
/// (10 digits, 2 digits, 6 digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Accession(String);

impl Accession {
    /// Parses the dashed form, or the 18-digit form without dashes (as in Archives folders).
    pub fn parse(value: &str) -> Result<Accession, EdgarError> {
        let value = value.trim();
        let bytes = value.as_bytes();
        let dashed = bytes.len() == 20
            && bytes[10] == b'-'
            && bytes[13] == b'-'
            && bytes
                .iter()
                .enumerate()
                .all(|(i, b)| i == 10 || i == 13 || b.is_ascii_digit());
        if dashed {
            return Ok(Accession(value.to_string()));
        }
        if bytes.len() == 18 && bytes.iter().all(u8::is_ascii_digit) {
            return Ok(Accession(format!(
                "{}-{}-{}",
                &value[..10],
                &value[10..12],
                &value[12..]
            )));
        }
        Err(EdgarError::InvalidInput(format!(
            "{value:?} is not an SEC accession number; expected 10 digits, 2 digits and 6 \
             digits separated by dashes, e.g. 0000320193-24-000123"
        )))
    }

    /// The dashed form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 18 digits without dashes, as in Archives folder names.
    pub fn no_dashes(&self) -> String {
        self.0.replace('-', "")
    }
}

impl fmt::Display for Accession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Accession {
    type Error = EdgarError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Accession::parse(&value)
    }
}

impl From<Accession> for String {
    fn from(value: Accession) -> Self {
        value.0
    }
}

/// The longest document file name accepted.
pub const MAX_FILE_NAME_LEN: usize = 160;

/// A document file name inside one filing folder: 1 to 160 characters from
/// `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`, without `..`, and not ending in
/// `.sha256` (the cache's checksum sidecars). Anything else (slashes, spaces, `..`) is refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FileName(String);

impl FileName {
    /// Checks `value` against the rules above.
    pub fn parse(value: &str) -> Result<FileName, EdgarError> {
        let problem = if value.is_empty() {
            Some("it is empty")
        } else if value.len() > MAX_FILE_NAME_LEN {
            Some("it is longer than 160 characters")
        } else if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            Some("only letters, digits, '.', '_' and '-' are allowed (no '/', '\\' or spaces)")
        } else if value.starts_with('.') || value.starts_with('-') {
            Some("it starts with '.' or '-'")
        } else if value.contains("..") {
            Some("it contains '..'")
        } else if value.to_ascii_lowercase().ends_with(".sha256") {
            Some("'.sha256' names are reserved for the cache's checksums")
        } else {
            None
        };
        match problem {
            Some(problem) => Err(EdgarError::InvalidInput(format!(
                "document file name {value:?} refused: {problem}"
            ))),
            None => Ok(FileName(value.to_string())),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for FileName {
    type Error = EdgarError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        FileName::parse(&value)
    }
}

impl From<FileName> for String {
    fn from(value: FileName) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accession_forms() {
        let a = Accession::parse("0000320193-24-000123").unwrap();
        assert_eq!(a.no_dashes(), "000032019324000123");
        assert_eq!(Accession::parse("000032019324000123").unwrap(), a);
        for bad in [
            "",
            "0000320193-24-00012",
            "0000320193_24_000123",
            "../../etc/passwd",
            "000032019-324-000123",
            "0000320193-24-00012a",
        ] {
            let err = Accession::parse(bad).unwrap_err().to_string();
            assert!(err.contains("accession"), "{bad}: {err}");
        }
    }

    #[test]
    fn file_names_are_restricted() {
        assert!(FileName::parse("aapl-20240928.htm").is_ok());
        assert!(FileName::parse("a2032880z10-k.txt").is_ok());
        assert!(FileName::parse("0000320193-96-000023.txt").is_ok());
        for bad in [
            "",
            "..",
            "../x.htm",
            "a/b.htm",
            "a\\b.htm",
            ".hidden",
            "-rf",
            "x..htm",
            "doc.htm.sha256",
            "with space.htm",
            "xslF345X05/wk-form4.xml",
        ] {
            let err = FileName::parse(bad).unwrap_err().to_string();
            assert!(err.contains("refused"), "{bad}: {err}");
        }
        assert!(FileName::parse(&"a".repeat(161)).is_err());
    }
}
