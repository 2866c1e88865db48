//! `--json`: a response in the canonical proto3 JSON mapping, the form grpcurl prints
//! (field names in lowerCamelCase, enums by name, timestamps in RFC 3339, 64-bit
//! integers and decimals as strings), read through the file descriptor set the
//! crate embeds. Fields at their default value are printed too, so a script finds
//! every field in every answer (proto3 `optional` fields that are unset are left out).

use std::sync::OnceLock;

use anyhow::Context as _;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

use crate::proto::v1 as pb;

/// A generated message with its full proto name.
pub trait ProtoName: prost::Message {
    /// `tradewatch.v1.Program`, ...
    const NAME: &'static str;
}

macro_rules! proto_names {
    ($($ty:ty => $name:literal),+ $(,)?) => {
        $(impl ProtoName for $ty {
            const NAME: &'static str = concat!("tradewatch.v1.", $name);
        })+
    };
}

proto_names! {
    pb::Program => "Program",
    pb::Initiative => "Initiative",
    pb::Target => "Target",
    pb::Indicator => "Indicator",
    pb::ListProgramsResponse => "ListProgramsResponse",
    pb::ListInitiativesResponse => "ListInitiativesResponse",
    pb::ListTargetsResponse => "ListTargetsResponse",
    pb::ListIndicatorsResponse => "ListIndicatorsResponse",
    pb::TargetProgress => "TargetProgress",
    pb::ListTargetProgressResponse => "ListTargetProgressResponse",
    pb::QuerySeriesResponse => "QuerySeriesResponse",
    pb::QueryBreakdownResponse => "QueryBreakdownResponse",
    pb::ProgramScorecard => "ProgramScorecard",
    pb::Observation => "Observation",
    pb::ListObservationsResponse => "ListObservationsResponse",
    pb::ListObservationRevisionsResponse => "ListObservationRevisionsResponse",
    pb::QuerySeriesVintagesResponse => "QuerySeriesVintagesResponse",
    pb::ListSeriesVintagesResponse => "ListSeriesVintagesResponse",
}

fn pool() -> anyhow::Result<&'static DescriptorPool> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| anyhow::anyhow!("the embedded file descriptor set: {e}"))
}

/// `message` as pretty-printed JSON, ending in a line break.
pub fn to_json<M: ProtoName>(message: &M) -> anyhow::Result<String> {
    let descriptor = pool()?
        .get_message_by_name(M::NAME)
        .with_context(|| format!("{} is not in the file descriptor set", M::NAME))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .with_context(|| format!("re-reading a {}", M::NAME))?;
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b"  "),
    );
    dynamic
        .serialize_with_options(
            &mut serializer,
            &SerializeOptions::new().skip_default_fields(false),
        )
        .with_context(|| format!("writing a {} as JSON", M::NAME))?;
    let mut text = String::from_utf8(out).context("JSON is UTF-8")?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_with_names_enums_and_timestamps() {
        let p = pb::Program {
            name: "programs/cq".into(),
            title: "Plan".into(),
            start_year: 2015,
            create_time: Some(prost_types::Timestamp {
                seconds: 1_433_116_800,
                nanos: 0,
            }),
            ..Default::default()
        };
        let v: serde_json::Value = serde_json::from_str(&to_json(&p).unwrap()).unwrap();
        assert_eq!(v["name"], "programs/cq");
        assert_eq!(v["startYear"], 2015);
        assert_eq!(v["endYear"], 0, "defaults are printed");
        assert_eq!(v["summary"], "");
        assert_eq!(v["createTime"], "2015-06-01T00:00:00Z");

        let t = pb::TargetProgress {
            status: pb::target_progress::Status::OnTrack as i32,
            ratio: Some(1.25),
            ..Default::default()
        };
        let v: serde_json::Value = serde_json::from_str(&to_json(&t).unwrap()).unwrap();
        assert_eq!(v["status"], "STATUS_ON_TRACK");
        assert_eq!(v["ratio"], 1.25);
        assert!(
            v.get("attainment").is_none(),
            "unset optionals are left out"
        );
    }

    #[test]
    fn every_named_message_is_in_the_descriptor_set() {
        fn check<M: ProtoName>() {
            assert!(
                pool().unwrap().get_message_by_name(M::NAME).is_some(),
                "{}",
                M::NAME
            );
        }
        check::<pb::Program>();
        check::<pb::Initiative>();
        check::<pb::Target>();
        check::<pb::Indicator>();
        check::<pb::ListProgramsResponse>();
        check::<pb::ListInitiativesResponse>();
        check::<pb::ListTargetsResponse>();
        check::<pb::ListIndicatorsResponse>();
        check::<pb::TargetProgress>();
        check::<pb::ListTargetProgressResponse>();
        check::<pb::QuerySeriesResponse>();
        check::<pb::QueryBreakdownResponse>();
        check::<pb::ProgramScorecard>();
        check::<pb::Observation>();
        check::<pb::ListObservationsResponse>();
        check::<pb::ListObservationRevisionsResponse>();
        check::<pb::QuerySeriesVintagesResponse>();
        check::<pb::ListSeriesVintagesResponse>();
    }
}
