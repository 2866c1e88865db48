//! Resource ids and resource names (AIP-122): `programs/{program}`,
//! `programs/{program}/initiatives/{initiative}`, `programs/{program}/targets/{target}`,
//! `indicators/{indicator}`.

use std::fmt;

use super::Invalid;

/// A caller-chosen resource id, RFC 1034 label style (AIP-122): 1 to 63 characters of
/// lower-case ASCII letters, digits and `-`, starting with a letter, not ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId(String);

impl ResourceId {
    /// Parses an id.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let bytes = s.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= 63
            && bytes[0].is_ascii_lowercase()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && bytes[bytes.len() - 1] != b'-';
        if ok {
            Ok(Self(s.to_owned()))
        } else if s.is_empty() {
            Err(Invalid::new("REQUIRED", "an id is required"))
        } else {
            Err(Invalid::new(
                "INVALID_ID",
                format!(
                    "{:?} is not a valid id: use 1 to 63 lower-case letters, digits and '-', \
                     starting with a letter and not ending with '-'",
                    truncate(s)
                ),
            ))
        }
    }

    /// Wraps an id read back from the database, where the column's domain type already
    /// enforces the same rule.
    pub fn from_db(s: String) -> Self {
        Self(s)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Shortens echoed input so an error message never repeats a megabyte of garbage.
pub fn truncate(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

fn segments<'a>(s: &'a str, pattern: &str) -> Result<Vec<&'a str>, Invalid> {
    let bad = || {
        if s.is_empty() {
            Invalid::new(
                "REQUIRED",
                format!("a resource name `{pattern}` is required"),
            )
        } else {
            Invalid::new(
                "INVALID_NAME",
                format!(
                    "{:?} is not a resource name of the form `{pattern}`",
                    truncate(s)
                ),
            )
        }
    };
    let parts: Vec<&str> = s.split('/').collect();
    let shape: Vec<&str> = pattern.split('/').collect();
    if parts.len() != shape.len() {
        return Err(bad());
    }
    let mut ids = Vec::new();
    for (part, want) in parts.iter().zip(&shape) {
        if want.starts_with('{') {
            ids.push(*part);
        } else if part != want {
            return Err(bad());
        }
    }
    Ok(ids)
}

fn id_in(name: &str, id: &str) -> Result<ResourceId, Invalid> {
    ResourceId::parse(id).map_err(|e| {
        Invalid::new(
            "INVALID_NAME",
            format!(
                "{:?} is not a valid resource name: {}",
                truncate(name),
                e.message
            ),
        )
    })
}

/// `programs/{program}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProgramName(pub ResourceId);

impl ProgramName {
    /// The name pattern.
    pub const PATTERN: &'static str = "programs/{program}";

    /// Parses a programme name.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let ids = segments(s, Self::PATTERN)?;
        Ok(Self(id_in(s, ids[0])?))
    }
}

impl fmt::Display for ProgramName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "programs/{}", self.0)
    }
}

/// `programs/{program}/initiatives/{initiative}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InitiativeName {
    /// The programme.
    pub program: ResourceId,
    /// The initiative's id within the programme.
    pub initiative: ResourceId,
}

impl InitiativeName {
    /// The name pattern.
    pub const PATTERN: &'static str = "programs/{program}/initiatives/{initiative}";

    /// Parses an initiative name.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let ids = segments(s, Self::PATTERN)?;
        Ok(Self {
            program: id_in(s, ids[0])?,
            initiative: id_in(s, ids[1])?,
        })
    }

    /// The programme this initiative belongs to.
    pub fn program_name(&self) -> ProgramName {
        ProgramName(self.program.clone())
    }
}

impl fmt::Display for InitiativeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "programs/{}/initiatives/{}",
            self.program, self.initiative
        )
    }
}

/// `programs/{program}/targets/{target}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetName {
    /// The programme.
    pub program: ResourceId,
    /// The target's id within the programme.
    pub target: ResourceId,
}

impl TargetName {
    /// The name pattern.
    pub const PATTERN: &'static str = "programs/{program}/targets/{target}";

    /// Parses a target name.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let ids = segments(s, Self::PATTERN)?;
        Ok(Self {
            program: id_in(s, ids[0])?,
            target: id_in(s, ids[1])?,
        })
    }

    /// The programme this target belongs to.
    pub fn program_name(&self) -> ProgramName {
        ProgramName(self.program.clone())
    }
}

impl fmt::Display for TargetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "programs/{}/targets/{}", self.program, self.target)
    }
}

/// `indicators/{indicator}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IndicatorName(pub ResourceId);

impl IndicatorName {
    /// The name pattern.
    pub const PATTERN: &'static str = "indicators/{indicator}";

    /// Parses an indicator name.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let ids = segments(s, Self::PATTERN)?;
        Ok(Self(id_in(s, ids[0])?))
    }
}

impl fmt::Display for IndicatorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "indicators/{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_rfc1034() {
        for ok in ["a", "cq-2015-service-trade", "x1", &"a".repeat(63)] {
            assert!(ResourceId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "-a",
            "a-",
            "A",
            "a_b",
            "a.b",
            "é",
            &"a".repeat(64),
        ] {
            assert!(ResourceId::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(ResourceId::parse("").unwrap_err().reason, "REQUIRED");
        assert_eq!(ResourceId::parse("A").unwrap_err().reason, "INVALID_ID");
    }

    #[test]
    fn names_round_trip_and_reject_other_shapes() {
        let n = InitiativeName::parse("programs/cq/initiatives/offshore-outsourcing").unwrap();
        assert_eq!(n.program.as_str(), "cq");
        assert_eq!(n.initiative.as_str(), "offshore-outsourcing");
        assert_eq!(
            n.to_string(),
            "programs/cq/initiatives/offshore-outsourcing"
        );
        assert_eq!(
            TargetName::parse("programs/cq/targets/t")
                .unwrap()
                .to_string(),
            "programs/cq/targets/t"
        );
        assert!(ProgramName::parse("programs/cq/").is_err());
        assert!(ProgramName::parse("program/cq").is_err());
        assert!(ProgramName::parse("programs/CQ").is_err());
        assert!(IndicatorName::parse("indicators/a/b").is_err());
        assert!(InitiativeName::parse("programs/cq/targets/x").is_err());
        assert_eq!(ProgramName::parse("").unwrap_err().reason, "REQUIRED");
    }
}
