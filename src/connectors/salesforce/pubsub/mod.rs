//! Salesforce's Pub/Sub API (gRPC, package `eventbus.v1`): the generated
//! messages, client and server from `proto/pubsub_api.proto`. The client
//! subscribes to Change Data Capture channels (`runtime::cdc`); the server
//! half is what the Salesforce emulator serves.
//!
//! The code is generated ahead of time into `proto/eventbus.v1.rs` by
//! `tools/protogen` (`cargo run --manifest-path tools/protogen/Cargo.toml`),
//! not by a build script: a protobuf compiler in every build cost a minute
//! of CPU for a file that changes only with Salesforce's API.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    include!("../../../../proto/eventbus.v1.rs");
}

#[cfg(test)]
mod generated {
    use sha2::{Digest, Sha256};

    /// The generated code is from the .proto as it is now: its first line
    /// records the hash `tools/protogen` read.
    #[test]
    fn generated_code_matches_the_proto() {
        let proto = include_bytes!("../../../../proto/pubsub_api.proto");
        let code = include_str!("../../../../proto/eventbus.v1.rs");
        let want = format!(
            "// proto/pubsub_api.proto sha256 {}",
            hex::encode(Sha256::digest(proto))
        );
        assert_eq!(
            code.lines().next(),
            Some(want.as_str()),
            "proto/pubsub_api.proto changed: run `cargo run --manifest-path tools/protogen/Cargo.toml`"
        );
    }
}
