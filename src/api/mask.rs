//! Update masks (AIP-134). An update copies the named fields from the request's
//! resource onto the stored one and then validates the result exactly as a create
//! would, so create and update can never disagree about what is valid.
//!
//! - no mask: every field the request sets to a non-default value;
//! - `*`: every mutable field (a full replacement);
//! - explicit paths: those fields; unknown paths and output-only fields are refused.

use prost_types::FieldMask;

use crate::error::Error;

/// A resource message whose fields an update mask can name.
pub trait Masked: Clone {
    /// Fields a client may change, by proto name.
    const MUTABLE: &'static [&'static str];
    /// Fields set by the server only.
    const OUTPUT_ONLY: &'static [&'static str];
    /// Copies `field` from `from` into `self`.
    fn copy_field(&mut self, from: &Self, field: &str);
    /// True when `field` holds a non-default value.
    fn is_set(&self, field: &str) -> bool;
}

/// Implements [`Masked`] for a prost message by listing its mutable fields.
macro_rules! masked {
    ($ty:ty, mutable: [$($f:ident),+ $(,)?], output_only: [$($o:literal),* $(,)?]) => {
        impl $crate::api::mask::Masked for $ty {
            const MUTABLE: &'static [&'static str] = &[$(stringify!($f)),+];
            const OUTPUT_ONLY: &'static [&'static str] = &[$($o),*];
            fn copy_field(&mut self, from: &Self, field: &str) {
                match field {
                    $(stringify!($f) => self.$f = from.$f.clone(),)+
                    _ => {}
                }
            }
            fn is_set(&self, field: &str) -> bool {
                match field {
                    $(stringify!($f) => !$crate::api::mask::is_default(&self.$f),)+
                    _ => false,
                }
            }
        }
    };
}
pub(crate) use masked;

/// True when `v` is its type's default (proto3's "not set").
pub fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Applies `mask` (or its absence) to `current`, taking values from `request`.
pub fn merge<T: Masked>(current: &T, request: &T, mask: Option<&FieldMask>) -> Result<T, Error> {
    let paths: Vec<&str> = match mask {
        None => T::MUTABLE
            .iter()
            .copied()
            .filter(|f| request.is_set(f))
            .collect(),
        Some(m) if m.paths.iter().any(|p| p == "*") => {
            if m.paths.len() > 1 {
                return Err(Error::invalid(
                    "update_mask",
                    "INVALID_UPDATE_MASK",
                    "`*` must be the only path of the update mask",
                ));
            }
            T::MUTABLE.to_vec()
        }
        Some(m) => {
            let mut violations = Vec::new();
            let mut paths = Vec::new();
            for (i, p) in m.paths.iter().enumerate() {
                if let Some(known) = T::MUTABLE.iter().find(|f| **f == p.as_str()) {
                    paths.push(*known);
                } else if T::OUTPUT_ONLY.contains(&p.as_str()) {
                    violations.push(crate::domain::FieldViolation::new(
                        format!("update_mask.paths[{i}]"),
                        "OUTPUT_ONLY_FIELD",
                        format!("{p:?} is output only and cannot be updated"),
                    ));
                } else {
                    violations.push(crate::domain::FieldViolation::new(
                        format!("update_mask.paths[{i}]"),
                        "UNKNOWN_FIELD",
                        format!(
                            "{:?} is not an updatable field; use one of: {}",
                            crate::domain::names::truncate(p),
                            T::MUTABLE.join(", ")
                        ),
                    ));
                }
            }
            if !violations.is_empty() {
                return Err(Error::InvalidArgument(violations));
            }
            paths
        }
    };
    let mut merged = current.clone();
    for p in paths {
        merged.copy_field(request, p);
    }
    Ok(merged)
}
