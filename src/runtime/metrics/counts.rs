//! What readers get back from the counters (`read.rs`): plain numbers, so
//! a report can subtract a before from an after.

/// What the `l3map_api_*` counters say, of one connection or of all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApiCounts {
    /// `l3map_api_calls_total`, both outcomes.
    pub calls: u64,
    /// `l3map_api_errors_total`, every kind.
    pub errors: u64,
    /// `l3map_api_429_total`.
    pub rate_limited: u64,
    /// `l3map_retries_total`.
    pub retries: u64,
}

impl std::ops::Add for ApiCounts {
    type Output = ApiCounts;

    fn add(self, o: ApiCounts) -> ApiCounts {
        ApiCounts {
            calls: self.calls + o.calls,
            errors: self.errors + o.errors,
            rate_limited: self.rate_limited + o.rate_limited,
            retries: self.retries + o.retries,
        }
    }
}
