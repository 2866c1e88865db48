//! Checks for free-text fields, dates, links and tags.

use chrono::NaiveDate;

use super::Invalid;
use super::names::truncate;

/// Limits of the free-text fields, in characters (Unicode scalar values).
pub mod limits {
    /// Titles of programmes, initiatives and targets.
    pub const TITLE: usize = 500;
    /// Indicator titles.
    pub const SHORT_TITLE: usize = 200;
    /// Agencies and issuing bodies.
    pub const AGENCY: usize = 200;
    /// Summaries and descriptions.
    pub const LONG_TEXT: usize = 10_000;
    /// Indicator descriptions.
    pub const DESCRIPTION: usize = 4_000;
    /// Links.
    pub const URI: usize = 2_000;
}

fn has_control(s: &str, multiline: bool) -> bool {
    s.chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t' || c == '\r')))
}

/// A required single-line text of 1 to `max` characters, trimmed of surrounding spaces.
pub fn required_line(s: &str, max: usize) -> Result<String, Invalid> {
    let t = s.trim();
    if t.is_empty() {
        return Err(Invalid::new("REQUIRED", "a non-empty value is required"));
    }
    optional_line(t, max)
}

/// An optional single-line text of at most `max` characters, trimmed.
pub fn optional_line(s: &str, max: usize) -> Result<String, Invalid> {
    let t = s.trim();
    let n = t.chars().count();
    if n > max {
        return Err(Invalid::new(
            "TOO_LONG",
            format!("{n} characters; at most {max} are allowed"),
        ));
    }
    if has_control(t, false) {
        return Err(Invalid::new(
            "CONTROL_CHARACTERS",
            "control characters (including line breaks) are not allowed here",
        ));
    }
    Ok(t.to_owned())
}

/// An optional multi-line text of at most `max` characters; line breaks and tabs are
/// kept, other control characters refused.
pub fn optional_text(s: &str, max: usize) -> Result<String, Invalid> {
    let n = s.chars().count();
    if n > max {
        return Err(Invalid::new(
            "TOO_LONG",
            format!("{n} characters; at most {max} are allowed"),
        ));
    }
    if has_control(s, true) {
        return Err(Invalid::new(
            "CONTROL_CHARACTERS",
            "control characters other than line breaks and tabs are not allowed",
        ));
    }
    Ok(s.trim().to_owned())
}

/// An optional ISO 8601 calendar date `YYYY-MM-DD`.
pub fn optional_date(s: &str) -> Result<Option<NaiveDate>, Invalid> {
    if s.is_empty() {
        return Ok(None);
    }
    let well_formed = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let date = well_formed
        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten();
    match date {
        Some(d) if (1800..=2200).contains(&chrono::Datelike::year(&d)) => Ok(Some(d)),
        _ => Err(Invalid::new(
            "INVALID_DATE",
            format!(
                "{:?} is not a calendar date YYYY-MM-DD between 1800 and 2200",
                truncate(s)
            ),
        )),
    }
}

/// An optional absolute `http` or `https` link without spaces.
pub fn optional_uri(s: &str) -> Result<String, Invalid> {
    if s.is_empty() {
        return Ok(String::new());
    }
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    let host_ok = rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty()
    });
    if s.len() > limits::URI || !host_ok || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Invalid::new(
            "INVALID_URI",
            format!(
                "{:?} is not an absolute http(s) link of at most {} characters",
                truncate(s),
                limits::URI
            ),
        ));
    }
    Ok(s.to_owned())
}

/// A tag: 1 to 64 characters of lower-case ASCII letters, digits and `-`.
pub fn tag(s: &str) -> Result<String, Invalid> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Invalid::new(
            "INVALID_TAG",
            format!(
                "{:?} is not a tag: use 1 to 64 lower-case letters, digits and '-'",
                truncate(s)
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_texts() {
        assert_eq!(required_line("  Plan  ", 10).unwrap(), "Plan");
        assert_eq!(required_line("   ", 10).unwrap_err().reason, "REQUIRED");
        assert_eq!(required_line("abcdef", 5).unwrap_err().reason, "TOO_LONG");
        assert_eq!(required_line("重庆服务贸易", 6).unwrap(), "重庆服务贸易");
        assert_eq!(
            optional_line("a\nb", 10).unwrap_err().reason,
            "CONTROL_CHARACTERS"
        );
        assert_eq!(optional_text("a\nb", 10).unwrap(), "a\nb");
        assert_eq!(
            optional_text("a\u{0}b", 10).unwrap_err().reason,
            "CONTROL_CHARACTERS"
        );
    }

    #[test]
    fn dates_links_tags() {
        assert_eq!(
            optional_date("2015-05-25").unwrap(),
            NaiveDate::from_ymd_opt(2015, 5, 25)
        );
        assert_eq!(optional_date("").unwrap(), None);
        for bad in [
            "2015-02-30",
            "2015-5-25",
            "25/05/2015",
            "2015-05-25T00:00",
            "0015-05-25",
        ] {
            assert_eq!(
                optional_date(bad).unwrap_err().reason,
                "INVALID_DATE",
                "{bad}"
            );
        }
        assert!(optional_uri("https://example.org/a?b#c").is_ok());
        for bad in ["ftp://x", "https://", "example.org", "https://a b"] {
            assert_eq!(
                optional_uri(bad).unwrap_err().reason,
                "INVALID_URI",
                "{bad}"
            );
        }
        assert!(tag("e-commerce").is_ok());
        assert!(tag("E").is_err());
        assert!(tag("").is_err());
    }
}
