//! The audit log in the API's terms. Triggers record rows as the database holds them
//! (`direction: "higher"`, `indicator_id`, `target_value` as a number); callers see
//! the fields and values of the resource's message in proto JSON: `direction:
//! "DIRECTION_HIGHER_IS_BETTER"`, `indicator: "indicators/…"`, `targetValue: "30"`.
//! The translation happens when the log is read, so rows recorded before it read the
//! same way. Columns that are not part of the API (internal keys, versions, the ids
//! already in the event's `resource`) are left out.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::filter::EnumType;
use crate::store::{indicators, initiatives, targets};

/// How a stored value reads in the API.
#[derive(Clone, Copy)]
enum Conv {
    /// A string, the same; NULL reads as `""`.
    Text,
    /// A whole number (stored and read as text, see `store::audit`).
    Int,
    /// An exact decimal: its text; NULL reads as `""`.
    Decimal,
    /// True or false.
    Bool,
    /// An instant in RFC 3339 UTC (`…Z`), as proto JSON writes a Timestamp.
    Time,
    /// A stored code read as its proto enum name.
    Enum(&'static EnumType),
    /// An id read as a resource name: `{prefix}{id}`; NULL reads as `""`.
    Name(&'static str),
    /// An initiative id of the event's programme: `programs/{p}/initiatives/{id}`.
    InitiativeName,
    /// Kept as it is (a list of tags, a map of dimensions).
    Same,
}

/// One stored column and the API field it is.
struct Column {
    column: &'static str,
    field: &'static str,
    conv: Conv,
}

const fn col(column: &'static str, field: &'static str, conv: Conv) -> Column {
    Column {
        column,
        field,
        conv,
    }
}

static ROLE: EnumType = EnumType {
    prefix: "ROLE_",
    values: &[
        ("ROLE_VIEWER", "viewer"),
        ("ROLE_EDITOR", "editor"),
        ("ROLE_ADMIN", "admin"),
    ],
};

static PROGRAM: &[Column] = &[
    col("program_id", "name", Conv::Name("programs/")),
    col("title", "title", Conv::Text),
    col("issuing_body", "issuingBody", Conv::Text),
    col("adoption_date", "adoptionDate", Conv::Text),
    col("jurisdiction", "jurisdiction", Conv::Text),
    col("start_year", "startYear", Conv::Int),
    col("end_year", "endYear", Conv::Int),
    col("summary", "summary", Conv::Text),
    col("source_uri", "sourceUri", Conv::Text),
    col("create_time", "createTime", Conv::Time),
    col("update_time", "updateTime", Conv::Time),
];

static INITIATIVE: &[Column] = &[
    col(
        "parent_initiative_id",
        "parentInitiative",
        Conv::InitiativeName,
    ),
    col("title", "title", Conv::Text),
    col("description", "description", Conv::Text),
    col("lead_agency", "leadAgency", Conv::Text),
    col("state", "state", Conv::Enum(&initiatives::STATE)),
    col("start_date", "startDate", Conv::Text),
    col("end_date", "endDate", Conv::Text),
    col("tags", "tags", Conv::Same),
    col("position", "position", Conv::Int),
    col("create_time", "createTime", Conv::Time),
    col("update_time", "updateTime", Conv::Time),
];

/// An indicator linked to an initiative (one entry of `Initiative.indicators`).
static INITIATIVE_INDICATOR: &[Column] =
    &[col("indicator_id", "indicator", Conv::Name("indicators/"))];

static TARGET: &[Column] = &[
    col("title", "title", Conv::Text),
    col("description", "description", Conv::Text),
    col("indicator_id", "indicator", Conv::Name("indicators/")),
    col("initiative_id", "initiative", Conv::InitiativeName),
    col("kind", "kind", Conv::Enum(&targets::KIND)),
    col("target_value", "targetValue", Conv::Decimal),
    col("unit_multiplier", "unitMultiplier", Conv::Int),
    col("target_period", "targetPeriod", Conv::Text),
    col("baseline_value", "baselineValue", Conv::Decimal),
    col("baseline_period", "baselinePeriod", Conv::Text),
    col("direction", "direction", Conv::Enum(&targets::DIRECTION)),
    col("create_time", "createTime", Conv::Time),
    col("update_time", "updateTime", Conv::Time),
];

static INDICATOR: &[Column] = &[
    col("indicator_id", "name", Conv::Name("indicators/")),
    col("title", "title", Conv::Text),
    col("description", "description", Conv::Text),
    col("unit", "unit", Conv::Text),
    col("unit_multiplier", "unitMultiplier", Conv::Int),
    col("frequency", "frequency", Conv::Enum(&indicators::FREQUENCY)),
    col("flow", "flow", Conv::Enum(&indicators::FLOW)),
    col("service_category", "serviceCategory", Conv::Text),
    col("region", "region", Conv::Text),
    col("dimensions", "dimensions", Conv::Same),
    col(
        "aggregation",
        "aggregation",
        Conv::Enum(&indicators::AGGREGATION),
    ),
    col("year_to_date", "yearToDate", Conv::Bool),
    col("direction", "direction", Conv::Enum(&targets::DIRECTION)),
    col("source_agency", "sourceAgency", Conv::Text),
    col("create_time", "createTime", Conv::Time),
    col("update_time", "updateTime", Conv::Time),
];

/// The counts of an observation write (`ObservationCounts`) and its stamp.
static OBSERVATION_WRITE: &[Column] = &[
    col("known_from", "knownFrom", Conv::Time),
    col("inserted", "inserted", Conv::Int),
    col("revised", "revised", Conv::Int),
    col("deleted", "deleted", Conv::Int),
    col("unchanged", "unchanged", Conv::Int),
];

static API_KEY: &[Column] = &[
    col("key_id", "name", Conv::Name("apiKeys/")),
    col("display_name", "displayName", Conv::Text),
    col("role", "role", Conv::Enum(&ROLE)),
    col("create_time", "createTime", Conv::Time),
    col("creator", "creator", Conv::Name("apiKeys/")),
];

/// The columns of the resource `resource` names, by its shape.
fn columns_of(resource: &str) -> Option<&'static [Column]> {
    let parts: Vec<&str> = resource.split('/').collect();
    Some(match parts.as_slice() {
        ["programs", _] => PROGRAM,
        ["programs", _, "initiatives", _] => INITIATIVE,
        ["programs", _, "initiatives", _, "indicators", _] => INITIATIVE_INDICATOR,
        ["programs", _, "targets", _] => TARGET,
        ["indicators", _] => INDICATOR,
        ["indicators", _, "observations"] => OBSERVATION_WRITE,
        ["apiKeys", _] => API_KEY,
        _ => return None,
    })
}

/// `row` (a recorded row or the changed columns of one, numbers as text) in the API's
/// field names and values. A resource of an unknown shape is shown as recorded.
pub fn to_api(resource: &str, row: Value) -> Value {
    let Some(columns) = columns_of(resource) else {
        return row;
    };
    let Value::Object(mut row) = row else {
        return row;
    };
    let program = resource.split('/').nth(1).unwrap_or_default();
    let mut out = Map::new();
    for c in columns {
        if let Some(v) = row.remove(c.column) {
            out.insert(c.field.to_owned(), convert(c.conv, v, program));
        }
    }
    Value::Object(out)
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn convert(conv: Conv, v: Value, program: &str) -> Value {
    let text = text_of(&v);
    match conv {
        Conv::Text | Conv::Decimal => Value::String(text.unwrap_or_default()),
        Conv::Int => match text.as_deref().map(str::parse::<i64>) {
            Some(Ok(n)) => Value::from(n),
            _ => v,
        },
        Conv::Bool => v,
        Conv::Time => match text.as_deref().map(DateTime::parse_from_rfc3339) {
            Some(Ok(t)) => Value::String(
                t.with_timezone(&Utc)
                    .to_rfc3339_opts(SecondsFormat::AutoSi, true),
            ),
            _ => v,
        },
        Conv::Enum(e) => match text {
            Some(code) => Value::String(
                e.values
                    .iter()
                    .find(|(_, stored)| *stored == code)
                    .map_or(code.clone(), |(name, _)| (*name).to_owned()),
            ),
            None => Value::String(format!("{}UNSPECIFIED", e.prefix)),
        },
        Conv::Name(prefix) => {
            Value::String(text.map(|id| format!("{prefix}{id}")).unwrap_or_default())
        }
        Conv::InitiativeName => Value::String(
            text.map(|id| format!("programs/{program}/initiatives/{id}"))
                .unwrap_or_default(),
        ),
        Conv::Same => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_target_reads_in_api_fields_and_values() {
        let row = json!({
            "program_id": "cq", "target_id": "t", "title": "30 billion",
            "description": "", "indicator_id": "cq-total", "initiative_id": null,
            "kind": "level", "target_value": "30.50", "unit_multiplier": "9",
            "target_period": "2020", "baseline_value": null, "baseline_period": null,
            "direction": "higher", "create_time": "2026-12-02T20:40:49.123+01:00",
            "update_time": "2026-12-02T19:40:49.123456+00:00", "version": "1"
        });
        assert_eq!(
            to_api("programs/cq/targets/t", row),
            json!({
                "title": "30 billion", "description": "", "indicator": "indicators/cq-total",
                "initiative": "", "kind": "KIND_LEVEL", "targetValue": "30.50",
                "unitMultiplier": 9, "targetPeriod": "2020", "baselineValue": "",
                "baselinePeriod": "", "direction": "DIRECTION_HIGHER_IS_BETTER",
                "createTime": "2026-12-02T19:40:49.123Z",
                "updateTime": "2026-12-02T19:40:49.123456Z"
            })
        );
    }

    #[test]
    fn changed_columns_of_an_initiative_and_an_observation_write() {
        assert_eq!(
            to_api(
                "programs/cq/initiatives/a1",
                json!({"state": "active", "parent_initiative_id": "root", "tags": ["x"]})
            ),
            json!({"state": "STATE_ACTIVE", "parentInitiative": "programs/cq/initiatives/root",
                   "tags": ["x"]})
        );
        assert_eq!(
            to_api(
                "indicators/cq-total/observations",
                json!({"known_from": "2026-12-02T19:40:49+00:00", "inserted": "10",
                       "revised": "0", "deleted": "0", "unchanged": "2"})
            ),
            json!({"knownFrom": "2026-12-02T19:40:49Z", "inserted": 10, "revised": 0,
                   "deleted": 0, "unchanged": 2})
        );
        assert_eq!(
            to_api(
                "apiKeys/abcdefabcdef",
                json!({"key_id": "abcdefabcdef", "role": "editor", "creator": null,
                       "revoke_time": null, "display_name": "loader"})
            ),
            json!({"name": "apiKeys/abcdefabcdef", "role": "ROLE_EDITOR", "creator": "",
                   "displayName": "loader"})
        );
    }
}
