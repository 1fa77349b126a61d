//! The properties each kind of connection takes, and the form of their
//! values: the table `declare.rs` checks a connection block against.

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Val {
    /// env("X") / file("p") only: a credential.
    Secret,
    /// A credential reference or plain text (Salesforce client ids are not secret).
    SecretOrText,
    Text,
    Words(&'static [&'static str]),
    Rate,
    Count,
    Scopes,
    Objects,
    /// ISO 4217 codes: `USD, EUR`.
    Currencies,
}

pub(super) struct Prop {
    pub(super) key: &'static str,
    pub(super) val: Val,
    pub(super) example: &'static str,
}

pub(super) const ZENDESK: &[Prop] = &[
    Prop {
        key: "subdomain",
        val: Val::Text,
        example: "subdomain \"acme\"",
    },
    Prop {
        key: "url",
        val: Val::Text,
        example: "url \"https://acme.zendesk.com\"",
    },
    Prop {
        key: "token",
        val: Val::Secret,
        example: "token env(\"ZENDESK_OAUTH_TOKEN\")",
    },
    // `oauth`: a fixed access `token`; `oauth_code`: an OAuth client whose
    // grant (from `l3map auth login`, or seeded by `refresh_token`) l3map
    // keeps and refreshes in its store; `client_credentials`: a confidential
    // client that signs in alone; `api_token`: retired by Zendesk in 2027.
    Prop {
        key: "auth",
        val: Val::Words(&["oauth", "oauth_code", "client_credentials", "api_token"]),
        example: "auth oauth_code",
    },
    Prop {
        key: "client_id",
        val: Val::SecretOrText,
        example: "client_id \"l3map_acme\"",
    },
    Prop {
        key: "client_secret",
        val: Val::Secret,
        example: "client_secret env(\"ZENDESK_CLIENT_SECRET\")",
    },
    Prop {
        key: "refresh_token",
        val: Val::Secret,
        example: "refresh_token env(\"ZENDESK_REFRESH_TOKEN\")",
    },
    Prop {
        key: "redirect_uri",
        val: Val::Text,
        example: "redirect_uri \"http://127.0.0.1:8789/callback\"",
    },
    Prop {
        key: "email",
        val: Val::Text,
        example: "email \"ai-agent@acme.com\"",
    },
    Prop {
        key: "scopes",
        val: Val::Scopes,
        example: "scopes read, write, tickets:write",
    },
    Prop {
        key: "plan",
        val: Val::Words(&[
            "team",
            "growth",
            "professional",
            "enterprise",
            "enterprise_plus",
        ]),
        example: "plan team",
    },
    Prop {
        key: "rate_limit",
        val: Val::Rate,
        example: "rate_limit 200 rpm",
    },
    Prop {
        key: "currencies",
        val: Val::Currencies,
        example: "currencies USD, EUR",
    },
    Prop {
        key: "webhook_secret",
        val: Val::Secret,
        example: "webhook_secret env(\"ZENDESK_WEBHOOK_SECRET\")",
    },
];

pub(super) const SALESFORCE: &[Prop] = &[
    Prop {
        key: "instance",
        val: Val::Text,
        example: "instance \"https://acme.my.salesforce.com\"",
    },
    Prop {
        key: "client_id",
        val: Val::SecretOrText,
        example: "client_id env(\"SF_CLIENT_ID\")",
    },
    // Which OAuth flow signs in; without it, the one whose properties are
    // there (`client_secret` + `refresh_token`, or `username` + `private_key`).
    Prop {
        key: "flow",
        val: Val::Words(&["web_server", "jwt_bearer", "refresh_token"]),
        example: "flow web_server",
    },
    Prop {
        key: "redirect_uri",
        val: Val::Text,
        example: "redirect_uri \"http://127.0.0.1:8789/callback\"",
    },
    Prop {
        key: "client_secret",
        val: Val::Secret,
        example: "client_secret env(\"SF_CLIENT_SECRET\")",
    },
    Prop {
        key: "refresh_token",
        val: Val::Secret,
        example: "refresh_token env(\"SF_REFRESH_TOKEN\")",
    },
    // The JWT bearer flow, instead of client_secret + refresh_token.
    Prop {
        key: "username",
        val: Val::SecretOrText,
        example: "username \"integration@acme.com\"",
    },
    Prop {
        key: "private_key",
        val: Val::Secret,
        example: "private_key file(\"/run/secrets/sf_key.pem\")",
    },
    Prop {
        key: "scopes",
        val: Val::Scopes,
        example: "scopes api, refresh_token, offline_access",
    },
    Prop {
        key: "objects",
        val: Val::Objects,
        example: "objects Case, Contact, Account",
    },
    Prop {
        key: "max_concurrent",
        val: Val::Count,
        example: "max_concurrent 100",
    },
    Prop {
        key: "api_version",
        val: Val::Text,
        example: "api_version \"v60.0\"",
    },
    Prop {
        key: "rate_limit",
        val: Val::Rate,
        example: "rate_limit 1000 rpm",
    },
    Prop {
        key: "currencies",
        val: Val::Currencies,
        example: "currencies USD, EUR",
    },
];

/// Whether `key` is a connection setting the language defines as holding
/// no secret (the address, scopes, plan, ...). Source frames show only these
/// values in clear: every other value in a connection block, including the
/// value of a mistyped or unknown key, is masked ([`crate::diagnostics::redact`]).
pub(crate) fn holds_no_secret(key: &str) -> bool {
    ZENDESK
        .iter()
        .chain(SALESFORCE)
        .any(|p| p.key == key && p.val != Val::Secret)
}

/// Requests per minute per token for each Zendesk plan.
pub(super) const ZENDESK_PLANS: &[(&str, u32)] = &[
    ("team", 200),
    ("growth", 400),
    ("professional", 400),
    ("enterprise", 700),
    ("enterprise_plus", 2500),
];
