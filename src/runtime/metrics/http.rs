//! `l3map_http_request_duration_seconds`: the runtime's own HTTP API, by
//! route template, method and status class. The middleware that times
//! each request is `server::timed`; this file turns what it saw into
//! label values from fixed sets, so no client can add series.

use super::labels::{non_negative, HttpLabels};
use super::names::HTTP_ROUTES;
use super::Metrics;

impl Metrics {
    /// `l3map_http_request_duration_seconds{route,method,status}`: one
    /// request to the runtime's own API. `route` is the matched route's
    /// template (`/v1/context/{ticket}`), never the path; anything not in
    /// [`HTTP_ROUTES`] is `other`, and a method other than GET, HEAD or
    /// POST is `other`, so no client can add series.
    pub fn http_request(&self, route: Option<&str>, method: &str, status: u16, seconds: f64) {
        let route = route
            .and_then(|r| HTTP_ROUTES.iter().find(|(known, _)| *known == r))
            .map_or("other", |(known, _)| known);
        let method = match method {
            "GET" | "HEAD" | "POST" => method,
            _ => "other",
        };
        let status = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.0
            .http
            .get_or_create(&HttpLabels {
                route: route.into(),
                method: method.into(),
                status: status.into(),
            })
            .observe(non_negative(seconds));
    }
}
