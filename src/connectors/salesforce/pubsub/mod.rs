//! Salesforce's Pub/Sub API (gRPC, package `eventbus.v1`): the generated
//! messages, client and server from `proto/pubsub_api.proto`. The client
//! subscribes to Change Data Capture channels (`runtime::cdc`); the server
//! half is what the Salesforce emulator serves.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    tonic::include_proto!("eventbus.v1");
}
