//! Query strings and form bodies (`application/x-www-form-urlencoded`), as
//! the REST endpoints and the OAuth token endpoint both read them.

use std::collections::HashMap;

/// A query string (or a form body) as names and values: decoded
/// leniently, a bad escape keeping its bytes; a repeated name keeps its
/// last value.
pub(super) fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
