//! What the checker can say about status tables and ticket forms (a
//! table's `forms`, checked against the lockfile), apart from
//! [`super::CheckErrorKind`] so each file stays one concern.

use super::{CheckError, CheckErrorKind};
use crate::syntax::Span;
use miette::Diagnostic;
use thiserror::Error;

/// A status table's target status and the ticket forms it applies to.
#[derive(Debug, Clone, Error, Diagnostic, PartialEq)]
pub enum FormErrorKind {
    /// Returned when a transition's target status is not offered on a ticket form the table applies to.
    #[error("status `{status}` ({custom}) is not offered on ticket form {form}")]
    #[diagnostic(code(l3map::status::not_on_form), severity(Warning), help("{help}"))]
    NotOnForm {
        status: String,
        custom: String,
        form: String,
        help: String,
    },
    /// Returned when a transition's target status is offered on none of the forms the table applies to.
    #[error("status `{status}` ({custom}) is offered on none of the ticket forms {forms}")]
    #[diagnostic(code(l3map::status::on_no_form), help("{help}"))]
    OnNoForm {
        status: String,
        custom: String,
        forms: String,
        help: String,
    },
    /// Returned when the lockfile predates ticket forms (lock_version 1): the form checks are skipped.
    #[error("l3map.lock.json does not record the ticket forms of `{conn}`: form checks skipped")]
    #[diagnostic(
        code(l3map::schema::forms_not_locked),
        severity(Advice),
        help("run `l3map schema pull --connection {conn}` to record them (lock_version 2)")
    )]
    FormsNotLocked { conn: String },
    /// Returned when a status declared by category only is, by the
    /// lockfile's default, the same custom status as an `#id` status.
    #[error("`{status}` (the `{category}` category's default, custom status #{id}) and `{other}` (#{id}) are one custom status: Zendesk cannot tell them apart")]
    #[diagnostic(
        code(l3map::status::indistinct),
        severity(Warning),
        help("give `{status}` its own custom status id, `{status} ... #ID`, or drop one of the two: l3map writes both as #{id} and reads a ticket there as `{other}`")
    )]
    DefaultIndistinct {
        status: String,
        other: String,
        category: String,
        id: u64,
    },
    /// Returned when a table's `forms` names a form twice.
    #[error("ticket form \"{form}\" is named twice in this table's `forms`")]
    #[diagnostic(
        code(l3map::status::form_named_twice),
        severity(Warning),
        help("name each form once: the table applies to the forms named, however often")
    )]
    FormNamedTwice { form: String },
    /// Returned when a table's `forms` names only inactive forms by that name.
    #[error("ticket form {form} is inactive: no new ticket takes it")]
    #[diagnostic(
        code(l3map::status::inactive_form),
        severity(Warning),
        help("tickets already on it are still checked and refused by it; drop it from `forms` once none are left, or activate it in Admin Center (Objects and rules > Tickets > Forms) and run `l3map schema pull`")
    )]
    InactiveForm { form: String },
    /// Returned when a table of a connection that is not Zendesk names ticket forms.
    #[error("`forms` on `{conn}`, which is not a Zendesk connection: ticket forms are Zendesk's, so nothing checks or refuses by them here")]
    #[diagnostic(
        code(l3map::status::forms_off_zendesk),
        severity(Warning),
        help("remove `forms` from this table")
    )]
    FormsOffZendesk { conn: String },
}

impl crate::syntax::PrimaryLabel for FormErrorKind {
    fn primary_label(&self) -> String {
        use FormErrorKind::*;
        match self {
            NotOnForm { .. } => "the table moves tickets here".into(),
            OnNoForm { .. } => "on no form".into(),
            FormsNotLocked { .. } => "forms unknown".into(),
            DefaultIndistinct { .. } => "the category's default".into(),
            FormNamedTwice { .. } => "again".into(),
            InactiveForm { .. } => "inactive".into(),
            FormsOffZendesk { .. } => "not a Zendesk table".into(),
        }
    }
}

impl FormErrorKind {
    /// This error at `span`.
    pub fn at(self, span: Span) -> CheckError {
        CheckErrorKind::from(self).at(span)
    }
}
