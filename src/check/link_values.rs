//! Whether the two sides of a link's `on` can ever hold the same value,
//! judged by what each side is, not only by its declared type: a Zendesk
//! id is digits only, an email always has an `@`, and a Salesforce record
//! Id as the API returns it is 18 characters ending in three checksum
//! characters (`A`-`Z`, `0`-`5`), so never digits only and never with an
//! `@` (the ID field type,
//! <https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/field_types.htm>;
//! the suffix, <https://salesforce.stackexchange.com/questions/1653>). A
//! text field, an external id or a custom field may hold anything, and is
//! never judged.

use super::{LinkErrorKind, Ty};

/// Which Zendesk value a link compares, as far as its form goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ZdValue {
    /// The record's `id`.
    Id,
    /// `user.email`.
    Email,
    /// `external_id` or a field.
    Other,
}

/// What a Zendesk value of a link is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Zd {
    /// A record id, or a number field: digits only.
    Digits,
    /// `user.email`.
    Email,
    /// An external id or a text field: anything.
    Text,
}

/// What a Salesforce field of a link is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sf {
    /// `Id` or a lookup field (`AccountId`, `OwnerId`, ...): a record Id.
    RecordId,
    /// `Email` of a Contact or Lead.
    Email,
    /// `Name`: a name people type.
    Name,
    /// `CaseNumber`: an auto number, digits.
    CaseNumber,
    /// A custom or other field: anything.
    Other,
}

/// The verdict on a pair of link sides.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    /// They can hold the same value.
    Comparable,
    /// They never can: (what the Zendesk side is, what the Salesforce
    /// side is, the fix).
    Never(String, String, String),
    /// They can only by accident (a Zendesk id typed as an Account's
    /// name): (what each side is, and the fix).
    Unlikely(String, String, String),
}

fn zd_kind(key: ZdValue, ty: &Ty) -> Zd {
    match key {
        ZdValue::Id => Zd::Digits,
        ZdValue::Email => Zd::Email,
        _ if matches!(ty, Ty::Num) => Zd::Digits,
        _ => Zd::Text,
    }
}

fn sf_kind(object: &str, field: &str) -> Sf {
    match field {
        "Id" | "OwnerId" | "RecordTypeId" | "CreatedById" | "LastModifiedById" | "AccountId"
        | "ContactId" | "ParentId" => Sf::RecordId,
        "Email" if matches!(object, "Contact" | "Lead") => Sf::Email,
        "Name" => Sf::Name,
        "CaseNumber" if object == "Case" => Sf::CaseNumber,
        _ => Sf::Other,
    }
}

/// Judges `zd` (the Zendesk path as written, e.g. `user.email`, of the
/// `zendesk` record) against `object.field`.
fn judge(zendesk: &str, zd: &str, key: ZdValue, zd_ty: &Ty, object: &str, field: &str) -> Verdict {
    let z = zd_kind(key, zd_ty);
    let s = sf_kind(object, field);
    let zd_said = match z {
        Zd::Digits if key == ZdValue::Id => format!("a Zendesk {zendesk} id, digits only"),
        Zd::Digits => "a number".to_string(),
        Zd::Email => "an email address".to_string(),
        Zd::Text => return Verdict::Comparable,
    };
    let sf_said = match s {
        Sf::RecordId => "a Salesforce record Id, 18 letters and digits",
        Sf::Email => "an email address",
        Sf::Name => "a name",
        Sf::CaseNumber => "a Case number, digits only",
        Sf::Other => return Verdict::Comparable,
    }
    .to_string();
    let an = if object.starts_with(['A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    };
    // Where each side's value usually is, for the fix.
    let keep_id = format!(
        "keep the {object} Id in `{zendesk}.external_id` (or in `{zendesk}.fields.KEY`) and compare that with `{object}.Id`"
    );
    let keep_zd = format!(
        "or keep the Zendesk value in {an} {object} field marked External ID and compare with it (`{object}.Zendesk_Id__c string external_id unique` in `fields`)"
    );
    let never = |fix: String| Verdict::Never(zd_said.clone(), sf_said.clone(), fix);
    match (z, s) {
        (Zd::Email, Sf::RecordId) if matches!(object, "Contact" | "Lead") => never(format!(
            "an email address never equals a Salesforce Id: compare `{zd}` with `{object}.Email` (with `pick newest`: Email is not unique), or {keep_id}"
        )),
        (Zd::Email, Sf::RecordId) => never(format!(
            "an email address never equals a Salesforce Id: {keep_id}, {keep_zd}"
        )),
        (Zd::Digits, Sf::RecordId) => never(format!(
            "a number never equals a Salesforce Id: {keep_id}, {keep_zd}"
        )),
        (Zd::Email, Sf::CaseNumber) => never(format!(
            "an email address never equals a Case number: compare `{zd}` with `Contact.Email` in a link to Contact, or link the ticket by `ticket.id`"
        )),
        (Zd::Digits, Sf::Email) => never(format!(
            "an email address always has an `@`, a number never: compare `{zendesk}.email` (a user's) with `{object}.Email`, {keep_zd}"
        )),
        (Zd::Digits, Sf::Name) | (Zd::Email, Sf::Name) => Verdict::Unlikely(
            zd_said.clone(),
            sf_said,
            format!(
                "{an} {object}'s Name is typed by people and is not unique: {keep_id}, {keep_zd}"
            ),
        ),
        _ => Verdict::Comparable,
    }
}

/// The diagnostic for `said` (the Zendesk path and the Salesforce field as
/// written), and whether it is an error (never equal) rather than a
/// warning (equal only by accident); `None` when the sides can be equal.
pub(crate) fn diagnostic(
    zendesk: &str,
    said: (String, String),
    key: ZdValue,
    zd_ty: &Ty,
    object: &str,
    field: &str,
) -> Option<(LinkErrorKind, bool)> {
    let (zd_path, salesforce) = said;
    Some(match judge(zendesk, &zd_path, key, zd_ty, object, field) {
        Verdict::Comparable => return None,
        Verdict::Never(zd_ty, sf_ty, help) => (
            LinkErrorKind::LinkTypes {
                zendesk: zd_path,
                zd_ty,
                salesforce,
                sf_ty,
                help,
            },
            true,
        ),
        Verdict::Unlikely(zd_ty, sf_ty, help) => (
            LinkErrorKind::LinkUnlikely {
                zendesk: zd_path,
                zd_ty,
                salesforce,
                sf_ty,
                help,
            },
            false,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(zendesk: &str, key: ZdValue, ty: Ty, object: &str, field: &str) -> Verdict {
        judge(zendesk, "x", key, &ty, object, field)
    }

    #[test]
    fn never_equal_by_what_the_values_are() {
        use ZdValue::*;
        let never = |v: Verdict| matches!(v, Verdict::Never(..));
        assert!(never(j("user", Email, Ty::Str, "Contact", "Id")));
        assert!(never(j("organization", Id, Ty::Num, "Account", "Id")));
        assert!(never(j("ticket", Id, Ty::Num, "Case", "AccountId")));
        assert!(never(j("user", Id, Ty::Num, "Contact", "Email")));
        assert!(never(j("user", Email, Ty::Str, "Case", "CaseNumber")));
        assert!(matches!(
            j("organization", Id, Ty::Num, "Account", "Name"),
            Verdict::Unlikely(..)
        ));
        // What may hold anything is never judged.
        for (key, object, field) in [
            (Other, "Account", "Id"),
            (Other, "Account", "Name"),
            (Email, "Contact", "Email"),
            (Id, "Case", "Zendesk_Ticket_Id__c"),
            (Id, "Case", "CaseNumber"),
        ] {
            assert_eq!(
                j("user", key, Ty::Str, object, field),
                Verdict::Comparable,
                "{key:?} {object}.{field}"
            );
        }
    }
}
