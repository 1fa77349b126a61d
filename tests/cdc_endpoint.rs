//! `[cdc] endpoint` without a scheme means TLS. Against `l3map emulate`'s
//! plain HTTP/2 Pub/Sub port the handshake fails; `l3map run` (the real
//! binary) says so once per stream, with the cause and the fix
//! (`http://HOST:PORT`), instead of "transport error" on every retry; with
//! the fix the stream comes up.

use crate::common;

use common::stack::Stack;
use std::time::Duration;

const QUIET: &str = "[poll]\nzendesk_interval_secs = 3600\nsalesforce_interval_secs = 3600\n";

fn reconnects(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("l3map_cdc_reconnects") && l.contains("AccountChangeEvent"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn restart_with_endpoint(s: &mut Stack, endpoint: &str) {
    s.kill_runtime();
    let toml = s.dir.join("l3map.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let base = text.split("[cdc]").next().unwrap().to_string();
    let text = format!("{base}[cdc]\nenabled = true\nendpoint = \"{endpoint}\"\n");
    std::fs::write(&toml, text).unwrap();
    let _ = std::fs::remove_file(s.dir.join("run.log"));
    s.start_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_endpoint_on_a_plain_server_is_said_once_with_the_fix() {
    let mut s = Stack::start_with("cdc-tls", QUIET, false).await;
    let plain = s.pubsub.trim_end_matches('/').to_string();
    let bare = plain.trim_start_matches("http://").to_string();
    restart_with_endpoint(&mut s, &bare).await;

    // Three attempts at least (retries after 1 s and 2 s).
    common::eventually("three failed attempts", Duration::from_secs(20), || async {
        let m = s.metrics().await;
        if reconnects(&m) >= 3 {
            Ok(())
        } else {
            Err(m)
        }
    })
    .await;
    let log = s.log();
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("could not subscribe") && l.contains("AccountChangeEvent"))
        .collect();
    assert_eq!(said.len(), 1, "said once, not per retry:\n{log}");
    let line = said[0];
    assert!(line.contains("TLS handshake likely failed"), "{line}");
    assert!(
        line.contains("an endpoint without a scheme means TLS"),
        "{line}"
    );
    assert!(
        line.contains(&format!("endpoint = \\\"{plain}\\\""))
            || line.contains(&format!("endpoint = \"{plain}\"")),
        "the fix names http://: {line}"
    );
    assert!(!line.ends_with("transport error"), "{line}");

    // The fix works: the same port with http:// streams.
    restart_with_endpoint(&mut s, &plain).await;
    common::eventually("the CDC stream is up", Duration::from_secs(15), || async {
        let m = s.metrics().await;
        if m.lines().any(|l| {
            l.starts_with("l3map_cdc_stream_up")
                && l.contains("AccountChangeEvent")
                && l.ends_with(" 1")
        }) {
            Ok(())
        } else {
            Err(m)
        }
    })
    .await;
    assert!(!s.log().contains("could not subscribe"), "{}", s.log());
}
