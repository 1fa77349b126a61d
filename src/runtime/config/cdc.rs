//! `[cdc]`: Salesforce Change Data Capture over the Pub/Sub API
//! (`runtime::cdc`).
//!
//! ```toml
//! [cdc]
//! enabled = true
//! endpoint = "api.pubsub.salesforce.com:7443"   # the default; TLS unless http://
//! channels = ["/data/AccountChangeEvent"]       # default: one per object the mappings name
//! batch = 100                                   # events asked for at a time, 1 to 100
//! [cdc.endpoints]
//! crm = "http://127.0.0.1:7443"                 # one connection's own endpoint (an emulator)
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::doc::Doc;
use super::error::ConfigError;

/// Salesforce's global Pub/Sub API endpoint.
/// https://developer.salesforce.com/docs/platform/pub-sub-api/guide/pub-sub-endpoints.html
pub const DEFAULT_PUBSUB_ENDPOINT: &str = "api.pubsub.salesforce.com:7443";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cdc {
    pub enabled: bool,
    /// `host:port` (TLS) or a URL; `http://` is plain HTTP/2, for loopback.
    pub endpoint: String,
    /// Connection name -> its endpoint, replacing `endpoint` for it.
    pub endpoints: BTreeMap<String, String>,
    /// `None`: derived from the mappings.
    pub channels: Option<Vec<String>>,
    pub batch: i32,
}

impl Default for Cdc {
    fn default() -> Cdc {
        Cdc {
            enabled: false,
            endpoint: DEFAULT_PUBSUB_ENDPOINT.to_string(),
            endpoints: BTreeMap::new(),
            channels: None,
            batch: 100,
        }
    }
}

impl Cdc {
    /// The endpoint `connection` subscribes at.
    pub fn endpoint_for(&self, connection: &str) -> &str {
        self.endpoints
            .get(connection)
            .map_or(self.endpoint.as_str(), String::as_str)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [cdc] table")]
pub(super) struct RawCdc {
    enabled: Option<bool>,
    endpoint: Option<Spanned<String>>,
    #[serde(default)]
    endpoints: BTreeMap<String, Spanned<String>>,
    channels: Option<Vec<Spanned<String>>>,
    batch: Option<Spanned<i64>>,
}

impl Doc<'_> {
    pub(super) fn cdc(&self, raw: Option<RawCdc>) -> Result<Cdc, ConfigError> {
        let mut cdc = Cdc::default();
        let Some(raw) = raw else { return Ok(cdc) };
        cdc.enabled = raw.enabled.unwrap_or(false);
        if let Some(e) = &raw.endpoint {
            cdc.endpoint = self.pubsub_endpoint("cdc.endpoint", e)?;
        }
        for (name, e) in &raw.endpoints {
            let v = self.pubsub_endpoint(&format!("cdc.endpoints.{name}"), e)?;
            cdc.endpoints.insert(name.clone(), v);
        }
        if let Some(channels) = raw.channels {
            let mut out = Vec::new();
            for c in channels {
                let name = c.get_ref().trim();
                let ok = name.strip_prefix("/data/").is_some_and(|t| {
                    !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                }) && crate::runtime::cdc::object_of(name).is_some();
                if !ok {
                    // `/data/ChangeEvents` and custom channels carry many
                    // objects' events: l3map subscribes one object each.
                    return Err(self.invalid(
                        c.span(),
                        format!("`cdc.channels`: \"{name}\" is not one object's change event channel (l3map subscribes to one object per channel, not to `/data/ChangeEvents` or a custom channel); write it like \"/data/AccountChangeEvent\" or \"/data/Ticket__ChangeEvent\""),
                    ));
                }
                out.push(name.to_string());
            }
            cdc.channels = Some(out);
        }
        if let Some(b) = &raw.batch {
            cdc.batch = self.ranged("cdc.batch", b, 1, 100)? as i32;
        }
        Ok(cdc)
    }

    fn pubsub_endpoint(&self, key: &str, v: &Spanned<String>) -> Result<String, ConfigError> {
        let text = v.get_ref().trim();
        if text.contains("://") {
            return self.url(key, v);
        }
        let ok = text
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            return Err(self.invalid(
                v.span(),
                format!("`{key}` = \"{text}\" is not an endpoint; write host:port (TLS), e.g. \"api.pubsub.salesforce.com:7443\", or a URL"),
            ));
        }
        Ok(text.to_string())
    }
}

#[cfg(test)]
mod tests {
    use crate::runtime::config::Config;

    fn parse(toml: &str) -> Result<Config, String> {
        Config::parse(
            &format!("mappings = \"m\"\n{toml}"),
            std::path::Path::new(""),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn cdc_is_off_by_default_and_reads_its_keys() {
        let c = parse("").unwrap();
        assert!(!c.cdc.enabled);
        assert_eq!(c.cdc.endpoint_for("crm"), "api.pubsub.salesforce.com:7443");
        let c = parse(
            "[cdc]\nenabled = true\nchannels = [\"/data/AccountChangeEvent\"]\nbatch = 50\n[cdc.endpoints]\ncrm = \"http://127.0.0.1:7443\"\n",
        )
        .unwrap();
        assert!(c.cdc.enabled);
        assert_eq!(c.cdc.batch, 50);
        assert_eq!(c.cdc.endpoint_for("crm"), "http://127.0.0.1:7443");
        assert_eq!(
            c.cdc.endpoint_for("other"),
            "api.pubsub.salesforce.com:7443"
        );
        assert_eq!(
            c.cdc.channels.as_deref(),
            Some(&["/data/AccountChangeEvent".to_string()][..])
        );
    }

    #[test]
    fn bad_cdc_keys_are_refused_with_the_key_named() {
        for (toml, says) in [
            ("[cdc]\nbatch = 101\n", "cdc.batch"),
            (
                "[cdc]\nchannels = [\"Account\"]\n",
                "not one object's change event channel",
            ),
            (
                "[cdc]\nchannels = [\"/data/ChangeEvents\"]\n",
                "not one object's change event channel",
            ),
            ("[cdc]\nendpoint = \"nowhere\"\n", "cdc.endpoint"),
            ("[cdc]\nenpoint = \"x:1\"\n", "enpoint"),
        ] {
            let e = parse(toml).unwrap_err();
            assert!(e.contains(says), "{toml}: {e}");
        }
    }
}
