//! API keys and roles: the secret format, its hash, and what each role may call.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::{Rng as _, RngCore as _};
use sha2::{Digest as _, Sha256};

/// What a key may do; ordered, so a higher role includes the lower ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Read methods.
    Viewer,
    /// Read and write methods of the data services.
    Editor,
    /// Everything, including AdminService.
    Admin,
}

impl Role {
    /// The name stored in the database and shown on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored or command-line name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Length of a key id: 12 characters of `[a-z0-9]`.
pub const KEY_ID_LEN: usize = 12;

/// A freshly generated key: its id and its secret (shown once).
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Public id, `apiKeys/{id}`.
    pub id: String,
    /// `tw_{id}_{43 base64url characters}`: 256 random bits.
    pub secret: String,
}

/// Generates a key id and a secret with 256 bits from the operating system's CSPRNG.
pub fn generate() -> NewKey {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let id: String = (0..KEY_ID_LEN)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    let mut random = [0u8; 32];
    rng.fill_bytes(&mut random);
    let secret = format!("tw_{id}_{}", URL_SAFE_NO_PAD.encode(random));
    NewKey { id, secret }
}

/// SHA-256 of a secret: what the database keeps. The secret carries 256 random bits,
/// so a plain (unsalted, fast) hash is enough: there is nothing to brute-force.
pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// True when `id` has the shape of a key id: [`KEY_ID_LEN`] characters of `[a-z0-9]`.
pub fn valid_key_id(id: &str) -> bool {
    id.len() == KEY_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// True when `secret` has the shape of a tradewatch key (checked before any lookup).
pub fn well_formed(secret: &str) -> bool {
    let Some(rest) = secret.strip_prefix("tw_") else {
        return false;
    };
    let Some((id, random)) = rest.split_once('_') else {
        return false;
    };
    valid_key_id(id)
        && random.len() == 43
        && random
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The role a gRPC method needs, from its path (`/package.Service/Method`); `None` for
/// methods open to everyone (health, reflection) and paths that are not ours (they are
/// answered UNIMPLEMENTED).
pub fn required_role(path: &str) -> Option<Role> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    if service == "tradewatch.v1.AdminService" {
        return Some(Role::Admin);
    }
    if !service.starts_with("tradewatch.") {
        return None;
    }
    const READS: [&str; 5] = ["Get", "List", "Query", "Export", "Watch"];
    if READS.iter().any(|p| method.starts_with(p)) {
        Some(Role::Viewer)
    } else {
        Some(Role::Editor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_and_distinct() {
        let a = generate();
        let b = generate();
        assert!(well_formed(&a.secret), "{}", a.secret);
        assert_eq!(a.secret.len(), 3 + 12 + 1 + 43);
        assert!(a.secret.starts_with(&format!("tw_{}_", a.id)));
        assert_ne!(a.secret, b.secret);
        assert_ne!(a.id, b.id);
        assert_ne!(hash(&a.secret), hash(&b.secret));
    }

    #[test]
    fn malformed_secrets_are_refused() {
        for s in [
            "",
            "tw_",
            "Bearer x",
            "tw_ABCDEFGHIJKL_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "tw_abcdefghijkl_short",
            "tw_abcdefghijkl_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!",
            "xx_abcdefghijkl_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(!well_formed(s), "{s:?}");
        }
        assert!(well_formed(
            "tw_abcdefghijkl_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        ));
    }

    #[test]
    fn roles_by_method() {
        let r = required_role;
        assert_eq!(
            r("/tradewatch.v1.ProgramService/GetProgram"),
            Some(Role::Viewer)
        );
        assert_eq!(
            r("/tradewatch.v1.ObservationService/WatchObservations"),
            Some(Role::Viewer)
        );
        assert_eq!(
            r("/tradewatch.v1.ReportingService/QuerySeries"),
            Some(Role::Viewer)
        );
        // Vintages are reads like the other reports.
        assert_eq!(
            r("/tradewatch.v1.ReportingService/QuerySeriesVintages"),
            Some(Role::Viewer)
        );
        assert_eq!(
            r("/tradewatch.v1.ReportingService/ListSeriesVintages"),
            Some(Role::Viewer)
        );
        assert_eq!(
            r("/tradewatch.v1.ProgramService/DeleteProgram"),
            Some(Role::Editor)
        );
        assert_eq!(
            r("/tradewatch.v1.ObservationService/ImportObservations"),
            Some(Role::Editor)
        );
        assert_eq!(
            r("/tradewatch.v1.AdminService/ListApiKeys"),
            Some(Role::Admin)
        );
        assert_eq!(r("/grpc.health.v1.Health/Check"), None);
        assert_eq!(
            r("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"),
            None
        );
        assert_eq!(
            r("/tradewatch.v1.ProgramService/Unknown"),
            Some(Role::Editor)
        );
        assert_eq!(r("garbage"), None);
        assert!(Role::Admin > Role::Editor && Role::Editor > Role::Viewer);
    }
}
