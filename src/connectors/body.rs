//! Reading a response body with a bound. Every body the connectors read
//! comes through here: a server (or anything in between) that streams an
//! endless or enormous answer must fail that one request, not grow the
//! process until the kernel kills it.

use super::{ApiError, System};

/// The most a single response body may hold: 32 MiB.
///
/// Why this size: the largest answers the connectors ask for are a page
/// of a Zendesk list or incremental export (at most 1,000 tickets a page)
/// and a Salesforce describe or query batch (at most 2,000 records), which
/// run to a few MiB on the biggest orgs. 32 MiB leaves ample headroom for
/// those while keeping the worst case per request (times the connector's
/// concurrency) far from exhausting memory.
pub const MAX_RESPONSE_BODY: usize = 32 * 1024 * 1024;

/// The body of `resp`, read chunk by chunk with a running total, or an
/// [`ApiError::Protocol`] (permanent: the same request would get the same
/// answer) as soon as it is longer than `limit`. A declared
/// `Content-Length` over the limit fails before anything is read.
pub async fn read_capped(
    system: System,
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::Protocol {
        system,
        message: format!(
            "the response body is larger than the {} MiB limit; the request was abandoned",
            limit / (1024 * 1024)
        ),
    };
    let declared = resp.content_length();
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| ApiError::transport(system, &e))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A server on 127.0.0.1 that answers one request with a chunked
    /// body of `chunks` repetitions of `piece` (endless when `None`),
    /// until the client hangs up.
    fn server(chunks: Option<usize>, piece: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
        let addr = listener.local_addr().expect("an address");
        std::thread::spawn(move || {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                        Transfer-Encoding: chunked\r\n\r\n";
            if s.write_all(head.as_bytes()).is_err() {
                return;
            }
            let mut sent = 0;
            while chunks.is_none_or(|n| sent < n) {
                let frame = [format!("{:x}\r\n", piece.len()).as_bytes(), piece, b"\r\n"].concat();
                if s.write_all(&frame).is_err() {
                    return;
                }
                sent += 1;
            }
            let _ = s.write_all(b"0\r\n\r\n");
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn an_endless_body_fails_at_the_limit() {
        let url = server(None, &[b'x'; 64 * 1024]);
        let resp = reqwest::Client::new().get(url).send().await.expect("sent");
        let e = read_capped(System::Zendesk, resp, 1024 * 1024)
            .await
            .expect_err("too large");
        assert!(matches!(e, ApiError::Protocol { .. }), "{e:?}");
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("1 MiB limit"), "{e}");
    }

    #[tokio::test]
    async fn a_body_under_the_limit_is_read_whole() {
        let url = server(Some(3), b"abc");
        let resp = reqwest::Client::new().get(url).send().await.expect("sent");
        let body = read_capped(System::Salesforce, resp, 9)
            .await
            .expect("read");
        assert_eq!(body, b"abcabcabc");
    }
}
