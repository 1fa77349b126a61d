//! Can this instance be reached at all? Asked once, before an interactive
//! command (`schema pull|diff`, `e2e --target live`) sends its first
//! request, so a typo in a subdomain or an instance that is down fails in
//! seconds with one line naming the host and the reason, instead of the
//! connectors' retry budget (minutes of silence) spent on a connection
//! that can never open.

use std::net::SocketAddr;
use std::time::Duration;

/// How long a name lookup and a TCP connect may each take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Resolves `url`'s host and opens (then closes) a TCP connection to it.
/// `Err` is one line: `cannot reach HOST:PORT: REASON`.
pub async fn reach(url: &str, timeout: Duration) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("`{url}` names no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| format!("`{url}` names no port"))?;
    let at = format!("{host}:{port}");
    let cannot = |why: String| format!("cannot reach {at}: {why}");
    // RFC 6761 §6.4: `.invalid` never resolves, and resolvers should say so
    // at once rather than ask the network; the example domains of the docs
    // use it, so a copied example fails here and now.
    let lower = host.trim_end_matches('.').to_ascii_lowercase();
    if lower == "invalid" || lower.ends_with(".invalid") {
        return Err(cannot(
            "the name does not resolve (`.invalid` is reserved and never does, RFC 6761)".into(),
        ));
    }
    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), port))).await {
            Err(_) => {
                return Err(cannot(format!(
                    "the name did not resolve within {} s (DNS)",
                    timeout.as_secs()
                )))
            }
            Ok(Err(e)) => return Err(cannot(format!("the name does not resolve: {e}"))),
            Ok(Ok(a)) => a.collect(),
        };
    if addrs.is_empty() {
        return Err(cannot("the name has no address".into()));
    }
    let mut last = String::new();
    for addr in addrs {
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) if addr.ip().to_string() == host => last = reason(&e),
            Ok(Err(e)) => last = format!("{} ({addr})", reason(&e)),
            Err(_) => {
                last = format!(
                    "no answer to a connection within {} s ({addr})",
                    timeout.as_secs()
                )
            }
        }
    }
    Err(cannot(last))
}

fn reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused: nothing listens on that port".into(),
        HostUnreachable | NetworkUnreachable => format!("unreachable: {e}"),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn invalid_names_fail_without_a_lookup_and_refused_ports_say_so() {
        let e = reach("https://acme.invalid", CONNECT_TIMEOUT)
            .await
            .unwrap_err();
        assert!(e.starts_with("cannot reach acme.invalid:443: "), "{e}");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let e = reach(&format!("http://127.0.0.1:{port}"), CONNECT_TIMEOUT)
            .await
            .unwrap_err();
        assert!(e.contains("connection refused"), "{e}");
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", open.local_addr().unwrap());
        reach(&url, CONNECT_TIMEOUT).await.unwrap();
    }
}
