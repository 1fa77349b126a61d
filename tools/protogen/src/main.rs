//! Writes `proto/eventbus.v1.rs`: the messages, client and server of
//! Salesforce's Pub/Sub API from `proto/pubsub_api.proto`, headed by the
//! SHA-256 of the .proto it came from (l3map's unit test
//! `connectors::salesforce::pubsub::tests::generated_code_matches_the_proto`
//! compares it).

use sha2::{Digest, Sha256};
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let proto_dir = root.join("proto");
    let source = std::fs::read(proto_dir.join("pubsub_api.proto"))
        .unwrap_or_else(|e| panic!("proto/pubsub_api.proto: {e}"));
    let descriptors = protox::compile(["pubsub_api.proto"], [&proto_dir])
        .unwrap_or_else(|e| panic!("proto/pubsub_api.proto: {e}"));
    let out = tempdir(&root);
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .out_dir(&out)
        .compile_fds(descriptors)
        .unwrap_or_else(|e| panic!("generating the Pub/Sub API code: {e}"));
    let generated = std::fs::read_to_string(out.join("eventbus.v1.rs"))
        .unwrap_or_else(|e| panic!("the generated eventbus.v1.rs: {e}"));
    std::fs::remove_dir_all(&out).ok();
    let hash = hex::encode(Sha256::digest(&source));
    let text = format!(
        "// proto/pubsub_api.proto sha256 {hash}\n\
         // Regenerate with `cargo run --manifest-path tools/protogen/Cargo.toml`.\n\
         {generated}"
    );
    let target = proto_dir.join("eventbus.v1.rs");
    std::fs::write(&target, text).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
    println!("wrote {}", target.display());
}

fn tempdir(root: &Path) -> std::path::PathBuf {
    let dir = root.join("tools/protogen/target/out");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}
