//! The org's objects and fields: a standard core (Account, Contact,
//! Case, CaseComment) plus what the compiled mappings declare.

use crate::ir::{FieldRef, Named, Program, Site, Type};
use crate::model::Kind;
use serde_json::{json, Value as Json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Id,
    Reference,
    String,
    Textarea,
    Email,
    Picklist,
    Currency,
    Double,
    Boolean,
    Date,
    DateTime,
}

impl FieldType {
    /// The name describe gives the type.
    pub fn api_name(self) -> &'static str {
        match self {
            FieldType::Id => "id",
            FieldType::Reference => "reference",
            FieldType::String => "string",
            FieldType::Textarea => "textarea",
            FieldType::Email => "email",
            FieldType::Picklist => "picklist",
            FieldType::Currency => "currency",
            FieldType::Double => "double",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::DateTime => "datetime",
        }
    }

    pub(crate) fn is_text(self) -> bool {
        matches!(
            self,
            FieldType::Id
                | FieldType::Reference
                | FieldType::String
                | FieldType::Textarea
                | FieldType::Email
                | FieldType::Picklist
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldSchema {
    pub name: String,
    pub ty: FieldType,
    pub updateable: bool,
    pub createable: bool,
    /// Required on create.
    pub required: bool,
    /// Active picklist values; restricted: nothing else is accepted.
    pub picklist: Vec<String>,
    /// Objects a reference field points at.
    pub reference_to: Vec<String>,
    /// Set on create when the body leaves the field out.
    pub default: Json,
    /// Marked External ID / Unique in Setup (describe's `externalId`,
    /// `unique`), as a project's `fields` block declares it.
    pub external_id: bool,
    pub unique: bool,
}

impl FieldSchema {
    pub fn new(name: &str, ty: FieldType) -> FieldSchema {
        FieldSchema {
            name: name.into(),
            ty,
            updateable: true,
            createable: true,
            required: false,
            picklist: vec![],
            reference_to: vec![],
            default: Json::Null,
            external_id: false,
            unique: false,
        }
    }

    fn read_only(mut self) -> Self {
        self.updateable = false;
        self.createable = false;
        self
    }

    fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Settable on create, never changed after (CaseComment.ParentId).
    fn create_only(mut self) -> Self {
        self.updateable = false;
        self
    }

    fn picklist(name: &str, values: &[&str]) -> FieldSchema {
        FieldSchema {
            picklist: values.iter().map(|v| v.to_string()).collect(),
            ..FieldSchema::new(name, FieldType::Picklist)
        }
    }

    fn reference(name: &str, to: &str) -> FieldSchema {
        FieldSchema {
            reference_to: vec![to.into()],
            ..FieldSchema::new(name, FieldType::Reference)
        }
    }

    fn with_default(mut self, v: Json) -> Self {
        self.default = v;
        self
    }

    /// `AccountId` is reached as `Account`, `Foo__c` as `Foo__r`.
    pub fn relationship_name(&self) -> Option<String> {
        if self.ty != FieldType::Reference {
            return None;
        }
        if let Some(stem) = self.name.strip_suffix("__c") {
            return Some(format!("{stem}__r"));
        }
        self.name.strip_suffix("Id").map(str::to_string)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObjectSchema {
    pub name: String,
    pub label: String,
    pub key_prefix: String,
    pub fields: Vec<FieldSchema>,
}

impl ObjectSchema {
    fn new(name: &str, prefix: &str, mut fields: Vec<FieldSchema>) -> ObjectSchema {
        let mut all = system_fields();
        all.append(&mut fields);
        ObjectSchema {
            name: name.into(),
            label: name.trim_end_matches("__c").replace('_', " "),
            key_prefix: prefix.into(),
            fields: all,
        }
    }

    /// SOQL and the REST API name fields case-insensitively.
    pub fn field(&self, name: &str) -> Option<&FieldSchema> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    pub fn relationship(&self, rel: &str) -> Option<&FieldSchema> {
        self.fields.iter().find(|f| {
            f.relationship_name()
                .is_some_and(|r| r.eq_ignore_ascii_case(rel))
        })
    }

    fn upsert_field(&mut self, f: FieldSchema) {
        match self.fields.iter_mut().find(|x| x.name == f.name) {
            Some(x) => *x = f,
            None => self.fields.push(f),
        }
    }
}

fn system_fields() -> Vec<FieldSchema> {
    vec![
        FieldSchema::new("Id", FieldType::Id).read_only(),
        FieldSchema::new("IsDeleted", FieldType::Boolean).read_only(),
        FieldSchema::new("CreatedDate", FieldType::DateTime).read_only(),
        FieldSchema::new("LastModifiedDate", FieldType::DateTime).read_only(),
        FieldSchema::new("SystemModstamp", FieldType::DateTime).read_only(),
    ]
}

#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub objects: Vec<ObjectSchema>,
}

impl Schema {
    /// The documented fallback: the standard objects the connector
    /// touches, with the custom fields of the example mappings and
    /// Salesforce's default Case statuses.
    pub fn standard() -> Schema {
        use FieldType as T;
        let account = ObjectSchema::new(
            "Account",
            "001",
            vec![
                FieldSchema::new("Name", T::String).required(),
                FieldSchema::picklist(
                    "SLA_Tier__c",
                    &["Ent", "Prem", "Biz", "Std", "Starter", "Gold", "Legacy"],
                ),
                FieldSchema::new("Contract_Value__c", T::Currency),
                FieldSchema::new("Renewal_Date__c", T::Date),
            ],
        );
        let contact = ObjectSchema::new(
            "Contact",
            "003",
            vec![
                FieldSchema::new("FirstName", T::String),
                FieldSchema::new("LastName", T::String).required(),
                FieldSchema::new("Name", T::String).read_only(),
                FieldSchema::new("Email", T::Email),
                FieldSchema::reference("AccountId", "Account"),
                FieldSchema::picklist("KYC_Status__c", &["Passed", "Pending", "Failed"]),
            ],
        );
        let case = ObjectSchema::new(
            "Case",
            "500",
            vec![
                FieldSchema::new("CaseNumber", T::String).read_only(),
                FieldSchema::new("Subject", T::String),
                FieldSchema::new("Description", T::Textarea),
                FieldSchema::picklist("Status", &["New", "Working", "Escalated", "Closed"])
                    .with_default(json!("New")),
                FieldSchema::picklist("Priority", &["High", "Medium", "Low"])
                    .with_default(json!("Medium")),
                FieldSchema::picklist("Type", &["Question", "Problem", "Feature Request"]),
                FieldSchema::picklist("Origin", &["Email", "Phone", "Web"]),
                FieldSchema::reference("AccountId", "Account"),
                FieldSchema::reference("ContactId", "Contact"),
                FieldSchema::new("AI_Handoff_Reason__c", T::String),
                FieldSchema::picklist("Risk_Decision__c", &["Pending", "Cleared", "Escalated"]),
                FieldSchema::new("Zendesk_Ticket_Id__c", T::String),
            ],
        );
        let comment = ObjectSchema::new(
            "CaseComment",
            "00a",
            vec![
                FieldSchema::reference("ParentId", "Case")
                    .required()
                    .create_only(),
                FieldSchema::new("CommentBody", T::Textarea),
                FieldSchema::new("IsPublished", T::Boolean).with_default(json!(false)),
            ],
        );
        Schema {
            objects: vec![account, contact, case, comment],
        }
    }

    /// Case-insensitive, as the API is.
    pub fn object(&self, name: &str) -> Option<&ObjectSchema> {
        self.objects
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(name))
    }

    fn object_mut(&mut self, name: &str) -> &mut ObjectSchema {
        let i = match self.objects.iter().position(|o| o.name == name) {
            Some(i) => i,
            None => {
                // Custom objects get prefixes a00, a01, ... in order.
                let n = self.objects.len();
                let prefix = format!("a0{}", (b'A' + (n % 26) as u8) as char);
                self.objects.push(ObjectSchema::new(
                    name,
                    &prefix,
                    vec![FieldSchema::new("Name", FieldType::String)],
                ));
                self.objects.len() - 1
            }
        };
        &mut self.objects[i]
    }

    pub fn extend_from(&mut self, p: &Program) {
        let sf_conns: Vec<&str> = p
            .connections
            .iter()
            .filter(|c| c.kind == Kind::Salesforce)
            .map(|c| c.name.as_str())
            .collect();
        for c in p.connections.iter().filter(|c| c.kind == Kind::Salesforce) {
            for o in &c.objects {
                self.object_mut(o);
            }
        }
        for (object, field, ty) in declared_fields(p) {
            self.declare(&object, &field, ty.as_ref());
        }
        // The field a link looks records up by (`Account.Acct_Key__c`),
        // which no rule may map: a text field unless the schema knows it.
        for l in p
            .links
            .iter()
            .filter(|l| sf_conns.contains(&l.crm.as_str()))
        {
            self.declare(&l.object, &l.field, None);
        }
        for t in p
            .status_tables
            .iter()
            .filter(|t| sf_conns.contains(&t.connection.as_str()))
        {
            let labels: Vec<&str> = t
                .statuses
                .iter()
                .map(|s| s.label.as_deref().unwrap_or(&s.name))
                .collect();
            let first = labels.first().map(|l| json!(l)).unwrap_or(Json::Null);
            let status = FieldSchema::picklist("Status", &labels).with_default(first);
            self.object_mut("Case").upsert_field(status);
        }
    }

    /// A field the mappings name: typed from its declaration, unless
    /// the standard schema knows it better (read-only, references).
    /// Marks a declared field External ID and/or Unique.
    pub(super) fn mark(&mut self, object: &str, field: &str, external_id: bool, unique: bool) {
        if let Some(f) = self
            .object_mut(object)
            .fields
            .iter_mut()
            .find(|f| f.name == field)
        {
            f.external_id |= external_id;
            f.unique |= unique;
        }
    }

    pub(super) fn declare(&mut self, object: &str, field: &str, ty: Option<&Type>) {
        let obj = self.object_mut(object);
        let known = obj.fields.iter().find(|f| f.name == field).cloned();
        let declared = match ty {
            Some(Type::Enum(vs)) => {
                let vs: Vec<&str> = vs.iter().map(String::as_str).collect();
                Some(FieldSchema::picklist(field, &vs))
            }
            Some(Type::Money(_)) => Some(FieldSchema::new(field, FieldType::Currency)),
            Some(Type::Number) => Some(FieldSchema::new(field, FieldType::Double)),
            Some(Type::Bool) => Some(FieldSchema::new(field, FieldType::Boolean)),
            Some(Type::Date) => Some(FieldSchema::new(field, FieldType::Date)),
            Some(Type::String) => Some(FieldSchema::new(field, FieldType::String)),
            _ => None,
        };
        match (known, declared) {
            (Some(k), Some(d)) if k.updateable && k.ty != FieldType::Reference => {
                let merged = FieldSchema {
                    default: k.default.clone(),
                    ..d
                };
                obj.upsert_field(merged);
            }
            (None, d) => {
                obj.upsert_field(d.unwrap_or_else(|| FieldSchema::new(field, FieldType::String)))
            }
            _ => {}
        }
    }
}

/// Every `Object.Field` the program reads or writes, with its type
/// when declared. Relationship paths (`Case.Account.Name`) are left
/// out: the field lives on another object, found through its Id.
fn declared_fields(p: &Program) -> Vec<(String, String, Option<Type>)> {
    p.index()
        .uses()
        // The fields rules map or `set` (a SKU table's target, and what
        // conditions read, are not declared here: they never were).
        .filter(|u| matches!(u.site, Site::MapRule | Site::SetTarget))
        .filter_map(|u| match &u.named {
            Named::Field {
                field: FieldRef::Salesforce { object, path, .. },
                ty,
            } => {
                let field = path.strip_prefix(&format!("{object}.")).unwrap_or(path);
                (!field.contains('.') && !field.is_empty())
                    .then(|| (object.clone(), field.to_string(), ty.clone()))
            }
            _ => None,
        })
        .collect()
}
