//! What the checker can say about record links (`link` blocks), apart
//! from [`super::CheckErrorKind`] so each file stays one concern.

use crate::syntax::span::Span;
use miette::Diagnostic;
use thiserror::Error;

/// Every mistake of a `link` block that has a code of its own.
#[derive(Debug, Clone, Error, Diagnostic, PartialEq)]
pub enum LinkErrorKind {
    /// Returned when a link starts from something that is not a Zendesk
    /// ticket, organization or user.
    #[error("`{name}` is not a Zendesk record a link can start from")]
    #[diagnostic(code(l3map::link::zendesk_object), help("{help}"))]
    LinkZendeskObject { name: String, help: String },
    /// Returned when the Zendesk side of `on` names no value of the record
    /// that a link can compare (or a ticket field no `fields` block declares).
    #[error("`{path}` is not a value of a Zendesk {object} a link can compare")]
    #[diagnostic(code(l3map::link::zendesk_key), help("{help}"))]
    LinkZendeskKey {
        path: String,
        object: String,
        help: String,
    },
    /// Returned when a link block is missing `on`, says something twice,
    /// or its `on` does not compare the two linked records.
    #[error("{message}")]
    #[diagnostic(code(l3map::link::shape), help("{help}"))]
    LinkShape { message: String, help: String },
    /// Returned when the Salesforce side of `on` is neither a standard
    /// field l3map knows nor declared in the connection's `fields` block.
    #[error("unknown Salesforce field `{object}.{field}`")]
    #[diagnostic(code(l3map::link::salesforce_field), help("{help}"))]
    LinkSalesforceField {
        object: String,
        field: String,
        help: String,
    },
    /// Returned when a link looks Salesforce records up by a field that is
    /// not indexed: the SOQL query would not be selective.
    #[error("`{object}.{field}` is not indexed in Salesforce, so finding the {object} of a Zendesk {zendesk} by it scans every {object}")]
    #[diagnostic(code(l3map::link::not_indexed), help("{help}"))]
    LinkNotIndexed {
        object: String,
        field: String,
        zendesk: String,
        help: String,
    },
    /// Returned when the Salesforce field of a link is not unique and the
    /// link does not say which of several matches wins.
    #[error("`{object}.{field}` is not unique: the link can match many {object} records where one is required")]
    #[diagnostic(code(l3map::link::many), help("{help}"))]
    LinkMany {
        object: String,
        field: String,
        help: String,
    },
    /// Returned when the two sides of `on` hold values that can never be equal.
    #[error("`{zendesk}` ({zd_ty}) cannot be compared with `{salesforce}` ({sf_ty})")]
    #[diagnostic(code(l3map::link::types), help("{help}"))]
    LinkTypes {
        zendesk: String,
        zd_ty: String,
        salesforce: String,
        sf_ty: String,
        help: String,
    },
    /// Returned when the two sides of `on` can hold the same value only by
    /// accident: a Zendesk id or an email against a name people type.
    #[error("`{zendesk}` ({zd_ty}) equals `{salesforce}` ({sf_ty}) only by accident")]
    #[diagnostic(code(l3map::link::unlikely), severity(Warning), help("{help}"))]
    LinkUnlikely {
        zendesk: String,
        zd_ty: String,
        salesforce: String,
        sf_ty: String,
        help: String,
    },
    /// Returned when `tickets` names something that is not a Zendesk ticket
    /// status (nor `unsolved` / `all`).
    #[error("`{name}` is not a Zendesk ticket status")]
    #[diagnostic(code(l3map::link::tickets), help("{help}"))]
    LinkTickets { name: String, help: String },
    /// Returned when a `map` rule reads a Salesforce object no link ties to
    /// Zendesk: in `l3map run` its changes can never reach a ticket.
    #[error("no link ties `{conn}.{object}` to Zendesk: this rule can never reach a ticket in `l3map run`")]
    #[diagnostic(code(l3map::link::unlinked), severity(Warning), help("{help}"))]
    UnlinkedMap {
        conn: String,
        object: String,
        help: String,
    },
    /// Returned when a field is mapped both ways: each side's edit is
    /// copied to the other, but edits of both sides within seconds of each
    /// other cross and can end swapped.
    #[error("`{field}` is mapped both ways")]
    #[diagnostic(
        code(l3map::map::both_ways),
        severity(Warning),
        help("an edit on either side is copied to the other once, but a person editing `{field}` on one side while someone edits its partner on the other (within seconds) can have the two edits cross and end swapped: neither API says which edit came last. Let one side own the field and keep one direction, or accept that such edits need a person to reconcile")
    )]
    BothWays {
        field: String,
        #[label("mapped the other way here")]
        other: Option<Span>,
    },
    /// Returned when a field is mapped both ways through a link that ties
    /// many tickets to one record: the tickets would fight over it.
    #[error(
        "`{field}` is mapped both ways through `{link}`, which ties many tickets to one {object}"
    )]
    #[diagnostic(
        code(l3map::map::both_ways_many),
        help("every ticket's value would be written to the one {object}, and every change of the {object} to all its tickets, whose writes would come back as ticket changes: the tickets would fight over the record and a person's edit of it would be overwritten. Keep one direction: `map {crm} -> {desk}` if Salesforce owns the field")
    )]
    BothWaysMany {
        field: String,
        link: String,
        object: String,
        crm: String,
        desk: String,
        #[label("mapped the other way here")]
        other: Option<Span>,
    },
}

impl crate::syntax::PrimaryLabel for LinkErrorKind {
    fn primary_label(&self) -> String {
        use LinkErrorKind::*;
        match self {
            LinkZendeskObject { .. } => "not ticket, organization or user".into(),
            LinkZendeskKey { .. } => "not comparable".into(),
            LinkShape { .. } => "here".into(),
            LinkSalesforceField { .. } => "not declared".into(),
            LinkNotIndexed { .. } => "not indexed".into(),
            LinkMany { .. } => "not unique".into(),
            LinkTypes { .. } => "never equal".into(),
            LinkUnlikely { .. } => "equal only by accident".into(),
            LinkTickets { .. } => "not a status".into(),
            UnlinkedMap { .. } => "no link reaches a ticket".into(),
            BothWays { .. } | BothWaysMany { .. } => {
                "read here, written by the other direction".into()
            }
        }
    }
}
