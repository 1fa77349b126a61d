//! Zendesk webhooks: `POST /webhooks/zendesk`. Only a delivery signed with
//! the shared secret, stamped within the tolerance of now, is read; each is
//! recorded durably before the 200 that tells Zendesk not to redeliver.
//!
//! Zendesk signs `timestamp + body` with HMAC-SHA256 and sends the base64
//! result in `X-Zendesk-Webhook-Signature`, the timestamp (RFC 3339) in
//! `X-Zendesk-Webhook-Signature-Timestamp`.

use crate::connectors::Secret;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use std::time::Duration;

pub const SIGNATURE: &str = "x-zendesk-webhook-signature";
pub const TIMESTAMP: &str = "x-zendesk-webhook-signature-timestamp";

/// Why a delivery was refused (the 401's reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Unsigned,
    BadSignature,
    /// Stamped too long ago (a replay) or too far ahead.
    Stale,
}

impl Refused {
    pub fn reason(self) -> &'static str {
        match self {
            Refused::Unsigned => "unsigned",
            Refused::BadSignature => "bad_signature",
            Refused::Stale => "replayed",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refused::Unsigned => "the delivery has no X-Zendesk-Webhook-Signature and -Timestamp headers",
            Refused::BadSignature => "the signature does not match this webhook's signing secret",
            Refused::Stale => "the signature timestamp is outside the allowed window (a replayed or delayed delivery)",
        }
    }
}

/// Checks a delivery. The comparison is constant-time (hmac's
/// `verify_slice`), so the answer's timing says nothing about the secret.
pub fn verify(
    secret: &Secret,
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now: jiff::Timestamp,
    tolerance: Duration,
) -> Result<(), Refused> {
    let (Some(signature), Some(timestamp)) = (signature, timestamp) else {
        return Err(Refused::Unsigned);
    };
    let given = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| Refused::BadSignature)?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes())
        .map_err(|_| Refused::BadSignature)?;
    mac.update(timestamp.as_bytes());
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| Refused::BadSignature)?;
    // Checked after the signature, so the timestamp is known to be the one
    // Zendesk signed.
    let stamped: jiff::Timestamp = timestamp.trim().parse().map_err(|_| Refused::Stale)?;
    let skew = now.duration_since(stamped).unsigned_abs();
    if skew > tolerance {
        return Err(Refused::Stale);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::zendesk::webhook_signature;

    const BODY: &[u8] = br#"{"type":"zen:event-type:ticket.created"}"#;

    fn now() -> jiff::Timestamp {
        "2026-11-25T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_delivery_signed_by_the_emulator_verifies() {
        let secret = Secret::new("whsec-1");
        let ts = "2026-11-25T09:59:30Z";
        let sig = webhook_signature(&secret, ts, BODY);
        let tol = Duration::from_secs(300);
        assert_eq!(
            verify(&secret, Some(&sig), Some(ts), BODY, now(), tol),
            Ok(())
        );
        // Another secret, another body, or another timestamp: refused.
        let other = Secret::new("whsec-2");
        assert_eq!(
            verify(&other, Some(&sig), Some(ts), BODY, now(), tol),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify(&secret, Some(&sig), Some(ts), b"{}", now(), tol),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify(
                &secret,
                Some(&sig),
                Some("2026-11-25T09:59:31Z"),
                BODY,
                now(),
                tol
            ),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify(&secret, Some("not base64!"), Some(ts), BODY, now(), tol),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify(&secret, None, Some(ts), BODY, now(), tol),
            Err(Refused::Unsigned)
        );
    }

    #[test]
    fn an_old_or_future_timestamp_is_a_replay() {
        let secret = Secret::new("whsec-1");
        let tol = Duration::from_secs(300);
        for ts in ["2026-11-25T09:50:00Z", "2026-11-25T10:06:00Z", "yesterday"] {
            let sig = webhook_signature(&secret, ts, BODY);
            assert_eq!(
                verify(&secret, Some(&sig), Some(ts), BODY, now(), tol),
                Err(Refused::Stale),
                "{ts}"
            );
        }
    }
}
