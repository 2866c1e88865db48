//! Code generated from `proto/tradewatch/v1/*.proto` by `build.rs`, and the encoded
//! file descriptor set served by reflection.

/// Package `tradewatch.v1`: messages, clients and servers.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("tradewatch.v1");
}

/// The encoded `FileDescriptorSet` of every tradewatch proto (with its imports).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tradewatch_descriptor.bin"));
