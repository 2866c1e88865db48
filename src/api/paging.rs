//! Pagination (AIP-158): page sizes and opaque, tamper-evident page tokens.
//!
//! A token carries the last key of the page it follows and an HMAC-SHA256 tag over
//! that key *and* the identity of the request that produced it (method, parent and any
//! other parameter that shapes the result). A token that was altered, or that is
//! replayed with a different request, fails the tag check and is refused with
//! INVALID_ARGUMENT. The key is shared by every replica through the database, so any
//! replica honours a token another issued. Tokens do not expire: keyset pagination
//! stays correct however long a client waits between pages.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::Error;

/// Page size used when a request says 0.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Largest page returned; larger requests are lowered to it.
pub const MAX_PAGE_SIZE: i64 = 1000;

const TAG_LEN: usize = 16;
const VERSION: u8 = 1;

/// Signs and checks page tokens.
#[derive(Clone)]
pub struct PageTokens {
    key: Vec<u8>,
}

impl std::fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokens(..)")
    }
}

/// What a List call should fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Rows to return.
    pub size: i64,
    /// Resume after this key (exclusive), if any.
    pub after: Option<String>,
}

impl Page {
    /// Rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch_limit(&self) -> i64 {
        self.size + 1
    }
}

impl PageTokens {
    /// Uses `key` (at least 32 bytes) to sign tokens.
    pub fn new(key: Vec<u8>) -> Self {
        Self { key }
    }

    fn tag(&self, request: &str, last_key: &str) -> [u8; TAG_LEN] {
        // new_from_slice accepts keys of any length for HMAC; this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(&(request.len() as u64).to_be_bytes());
        mac.update(request.as_bytes());
        mac.update(last_key.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(&full[..TAG_LEN]);
        out
    }

    /// Parses `page_size` and `page_token` of a request identified by `request` (e.g.
    /// `ListInitiatives programs/cq`), with the resource lists' page sizes.
    pub fn page(&self, request: &str, page_size: i32, page_token: &str) -> Result<Page, Error> {
        self.page_sized(
            request,
            page_size,
            page_token,
            DEFAULT_PAGE_SIZE,
            MAX_PAGE_SIZE,
        )
    }

    /// As [`page`](Self::page), for a list with its own default and maximum page size.
    pub fn page_sized(
        &self,
        request: &str,
        page_size: i32,
        page_token: &str,
        default: i64,
        max: i64,
    ) -> Result<Page, Error> {
        if page_size < 0 {
            return Err(Error::invalid(
                "page_size",
                "NEGATIVE_PAGE_SIZE",
                format!("page_size must not be negative (got {page_size})"),
            ));
        }
        let size = match i64::from(page_size) {
            0 => default,
            n => n.min(max),
        };
        if page_token.is_empty() {
            return Ok(Page { size, after: None });
        }
        let bad = || {
            Error::invalid(
                "page_token",
                "INVALID_PAGE_TOKEN",
                "page_token is not valid for this request: it was altered, or it was issued \
                 for a different request (filter, parent or method)",
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(page_token).map_err(|_| bad())?;
        if bytes.len() < 1 + TAG_LEN || bytes[0] != VERSION {
            return Err(bad());
        }
        let (body, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let last_key = std::str::from_utf8(&body[1..]).map_err(|_| bad())?;
        let expected = self.tag(request, last_key);
        // Constant-time comparison: the tag is a secret-derived value.
        let diff = expected
            .iter()
            .zip(tag)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(bad());
        }
        Ok(Page {
            size,
            after: Some(last_key.to_owned()),
        })
    }

    /// Cuts `rows` (fetched with [`Page::fetch_limit`]) to the page and returns the
    /// token of the next page, empty on the last one.
    pub fn finish<T>(
        &self,
        request: &str,
        page: &Page,
        rows: &mut Vec<T>,
        key: impl Fn(&T) -> String,
    ) -> String {
        let size = page.size as usize;
        if rows.len() <= size {
            return String::new();
        }
        rows.truncate(size);
        match rows.last() {
            Some(last) => {
                let last_key = key(last);
                let mut bytes = Vec::with_capacity(1 + last_key.len() + TAG_LEN);
                bytes.push(VERSION);
                bytes.extend_from_slice(last_key.as_bytes());
                bytes.extend_from_slice(&self.tag(request, &last_key));
                URL_SAFE_NO_PAD.encode(bytes)
            }
            None => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> PageTokens {
        PageTokens::new(vec![7u8; 32])
    }

    #[test]
    fn sizes() {
        let t = tokens();
        assert_eq!(t.page("r", 0, "").unwrap().size, 50);
        assert_eq!(t.page("r", 10, "").unwrap().size, 10);
        assert_eq!(t.page("r", 5000, "").unwrap().size, 1000);
        assert!(t.page("r", -1, "").is_err());
    }

    #[test]
    fn token_round_trip_and_tamper_evidence() {
        let t = tokens();
        let page = t.page("ListX a", 2, "").unwrap();
        let mut rows = vec!["a", "b", "c"];
        let token = t.finish("ListX a", &page, &mut rows, |r| r.to_string());
        assert_eq!(rows, vec!["a", "b"]);
        assert!(!token.is_empty());
        assert_eq!(
            t.page("ListX a", 2, &token).unwrap().after.as_deref(),
            Some("b")
        );
        // Another request, another key, or one altered character: refused.
        assert!(t.page("ListX other", 2, &token).is_err());
        assert!(
            PageTokens::new(vec![8u8; 32])
                .page("ListX a", 2, &token)
                .is_err()
        );
        let mut altered = token.clone().into_bytes();
        altered[2] = if altered[2] == b'A' { b'B' } else { b'A' };
        assert!(
            t.page("ListX a", 2, std::str::from_utf8(&altered).unwrap())
                .is_err()
        );
        assert!(t.page("ListX a", 2, "not base64!").is_err());
        // The last page has no token.
        let mut rows = vec!["a"];
        assert_eq!(t.finish("ListX a", &page, &mut rows, |r| r.to_string()), "");
    }
}
