//! Generated protobuf and gRPC code. Modules mirror the proto packages
//! (`proto::events::v1`, `proto::interaction::v1`, …); no hand-written logic lives here.
#![allow(clippy::all, missing_docs)]

pub mod events {
    pub mod v1 {
        tonic::include_proto!("events.v1");
    }
}

pub mod content {
    pub mod v1 {
        tonic::include_proto!("content.v1");
    }
}

pub mod interaction {
    pub mod v1 {
        tonic::include_proto!("interaction.v1");
    }
}

pub mod stats {
    pub mod v1 {
        tonic::include_proto!("stats.v1");
    }
}

/// The encoded `FileDescriptorSet` of every package, served by gRPC reflection so
/// `grpcurl` works without local `.proto` files.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("descriptor");
