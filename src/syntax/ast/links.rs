//! Record links: `link desk.organization <-> crm.Account { ... }`.

use super::Ident;
use crate::syntax::span::Span;
use educe::Educe;
use serde::Serialize;

/// `link desk.organization <-> crm.Account { on ... tickets ... pick ... }`.
/// Statements are kept as lists (each may be written more than once) so
/// the checker can say "twice" instead of the parser refusing.
#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct Link {
    pub desk: Ident,
    pub zendesk: Ident,
    pub crm: Ident,
    pub object: Ident,
    pub on: Vec<LinkOn>,
    pub tickets: Vec<LinkTickets>,
    pub pick: Vec<Ident>,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

/// `on organization.external_id == Account.Id` (sides in either order).
#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct LinkOn {
    pub left: Vec<Ident>,
    #[educe(PartialEq(ignore))]
    pub left_span: Span,
    pub right: Vec<Ident>,
    #[educe(PartialEq(ignore))]
    pub right_span: Span,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

/// `tickets unsolved` / `tickets all` / `tickets new, open`.
#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct LinkTickets {
    pub names: Vec<Ident>,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}
