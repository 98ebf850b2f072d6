//! Data Package descriptors and Table Schema (frictionless v1 specs): parsing a
//! `datapackage.json` into [`PackageDescriptor`] (every error names the resource and field)
//! and checking CSV cells against a [`Field`] (types, formats, constraints).
//!
//! What is supported is what fiscal data packages use: CSV resources with a relative
//! `path`, an inline `schema`, `dialect` (`delimiter`, `quoteChar`, `doubleQuote`,
//! `header`), `encoding` UTF-8, `missingValues`, `primaryKey`, and the field types
//! `string` (formats `default`, `email`, `uri`, `uuid`), `number`, `integer`, `boolean`,
//! `date`, `datetime`, `time`, `year`, `yearmonth` and `any`, with the constraints
//! `required`, `unique`, `minimum`, `maximum`, `minLength`, `maxLength`, `pattern` and
//! `enum`. Anything else is refused by name rather than ignored.

use std::cmp::Ordering;

use regex::Regex;
use serde_json::{Map, Value};

/// Why a descriptor is invalid (the message names the place).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DescriptorError(pub String);

fn err(message: impl Into<String>) -> DescriptorError {
    DescriptorError(message.into())
}

/// A parsed data package descriptor.
#[derive(Debug, Clone)]
pub struct PackageDescriptor {
    /// `name`: lower-case letters, digits, `.`, `_`, `-`.
    pub name: String,
    /// `title`, when given.
    pub title: Option<String>,
    /// The resources, in order.
    pub resources: Vec<Resource>,
    /// The descriptor as sent.
    pub raw: Map<String, Value>,
}

/// One CSV resource.
#[derive(Debug, Clone)]
pub struct Resource {
    /// `name`.
    pub name: String,
    /// `path`, relative to the descriptor.
    pub path: String,
    /// The dialect.
    pub dialect: Dialect,
    /// The fields, in column order.
    pub fields: Vec<Field>,
    /// Indexes of the `primaryKey` fields (empty without one).
    pub primary_key: Vec<usize>,
    /// The values that mean "missing" (`[""]` by default).
    pub missing_values: Vec<String>,
}

/// The CSV dialect of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialect {
    /// `delimiter` (`,`).
    pub delimiter: u8,
    /// `quoteChar` (`"`).
    pub quote: u8,
    /// `doubleQuote` (true).
    pub double_quote: bool,
    /// `header` (true): the first row holds the field names.
    pub header: bool,
}

impl Default for Dialect {
    fn default() -> Self {
        Self {
            delimiter: b',',
            quote: b'"',
            double_quote: true,
            header: true,
        }
    }
}

/// A field's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Text.
    String,
    /// A decimal number.
    Number,
    /// A whole number.
    Integer,
    /// `true`/`false` (and the configured values).
    Boolean,
    /// `YYYY-MM-DD` (or the format's).
    Date,
    /// ISO 8601 date and time.
    Datetime,
    /// `HH:MM:SS`.
    Time,
    /// A year.
    Year,
    /// `YYYY-MM`.
    Yearmonth,
    /// Anything.
    Any,
}

impl FieldType {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "string" => Self::String,
            "number" => Self::Number,
            "integer" => Self::Integer,
            "boolean" => Self::Boolean,
            "date" => Self::Date,
            "datetime" => Self::Datetime,
            "time" => Self::Time,
            "year" => Self::Year,
            "yearmonth" => Self::Yearmonth,
            "any" => Self::Any,
            _ => return None,
        })
    }

    /// The type's name in Table Schema.
    pub fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Integer => "integer",
            Self::Boolean => "boolean",
            Self::Date => "date",
            Self::Datetime => "datetime",
            Self::Time => "time",
            Self::Year => "year",
            Self::Yearmonth => "yearmonth",
            Self::Any => "any",
        }
    }
}

/// A string format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringFormat {
    /// Any text.
    Default,
    /// An email address.
    Email,
    /// An absolute URI.
    Uri,
    /// A UUID.
    Uuid,
}

/// One field of a schema.
#[derive(Debug, Clone)]
pub struct Field {
    /// `name`.
    pub name: String,
    /// `type` (`string` when absent).
    pub ty: FieldType,
    /// The string format.
    pub format: StringFormat,
    /// `strftime`-style date format of a `date` field (`None`: ISO).
    pub date_format: Option<String>,
    /// `bareNumber` (true): numbers without leading/trailing text.
    pub bare_number: bool,
    /// `decimalChar` (`.`).
    pub decimal_char: char,
    /// `groupChar`, when numbers group their digits.
    pub group_char: Option<char>,
    /// Values read as `true`.
    pub true_values: Vec<String>,
    /// Values read as `false`.
    pub false_values: Vec<String>,
    /// The constraints.
    pub constraints: Constraints,
    /// The fiscal `columnType`, when given.
    pub column_type: Option<String>,
    /// The field as sent.
    pub raw: Map<String, Value>,
}

/// A field's constraints.
#[derive(Debug, Clone, Default)]
pub struct Constraints {
    /// `required`.
    pub required: bool,
    /// `unique`.
    pub unique: bool,
    /// `minLength` (characters, or items).
    pub min_length: Option<usize>,
    /// `maxLength`.
    pub max_length: Option<usize>,
    /// `minimum`, parsed as the field's type.
    pub minimum: Option<Cell>,
    /// `maximum`.
    pub maximum: Option<Cell>,
    /// `pattern`, anchored at both ends.
    pub pattern: Option<Regex>,
    /// `enum`, parsed as the field's type.
    pub one_of: Option<Vec<Cell>>,
}

/// A typed cell value, for comparisons.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text (also `any`).
    Text(String),
    /// A number or integer.
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// A date, time or year as a sortable tuple (year, month, day, seconds of the day).
    Moment(i64, u32, u32, u32),
}

impl Cell {
    fn compare(&self, other: &Self) -> Option<Ordering> {
        match (self, other) {
            (Self::Text(a), Self::Text(b)) => Some(a.cmp(b)),
            (Self::Number(a), Self::Number(b)) => a.partial_cmp(b),
            (Self::Bool(a), Self::Bool(b)) => Some(a.cmp(b)),
            (Self::Moment(a, b, c, d), Self::Moment(e, f, g, h)) => {
                Some((a, b, c, d).cmp(&(e, f, g, h)))
            }
            _ => None,
        }
    }
}

/// A package or resource name: `[a-z0-9._-]+` (Data Package's pattern without `/`, which
/// would climb in object keys).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
        && name != "."
        && name != ".."
}

fn text<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    place: &str,
) -> Result<Option<&'a str>, DescriptorError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(err(format!("{place}: {key} must be a string"))),
    }
}

fn one_char(
    map: &Map<String, Value>,
    key: &str,
    default: u8,
    place: &str,
) -> Result<u8, DescriptorError> {
    match text(map, key, place)? {
        None => Ok(default),
        Some(s) if s.len() == 1 && s.is_ascii() => Ok(s.as_bytes()[0]),
        Some(s) => Err(err(format!(
            "{place}: {key} {s:?} must be one ASCII character"
        ))),
    }
}

fn flag(
    map: &Map<String, Value>,
    key: &str,
    default: bool,
    place: &str,
) -> Result<bool, DescriptorError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(err(format!("{place}: {key} must be true or false"))),
    }
}

impl PackageDescriptor {
    /// Parses and checks a descriptor. MUST refuse (naming the place): invalid JSON, a
    /// missing or bad package `name`, no `resources`, a resource without a valid unique
    /// `name`, a `path` that is not a relative path to a `.csv` file, a non-UTF-8
    /// `encoding`, a bad `dialect`, a missing or bad `schema`, unknown field types, formats
    /// or constraints of the wrong kind, and a `primaryKey` naming no field.
    pub fn parse(bytes: &[u8]) -> Result<Self, DescriptorError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| err(format!("datapackage.json is not valid JSON: {e}")))?;
        let Value::Object(raw) = value else {
            return Err(err("datapackage.json must be a JSON object"));
        };
        let name = text(&raw, "name", "package")?
            .ok_or_else(|| err("package: no name"))?
            .to_owned();
        if !valid_name(&name) {
            return Err(err(format!(
                "package: name {name:?} must be lower-case letters, digits, '.', '_' or '-'"
            )));
        }
        let title = text(&raw, "title", "package")?.map(str::to_owned);
        let list = match raw.get("resources") {
            Some(Value::Array(list)) if !list.is_empty() => list,
            _ => return Err(err("package: resources must be a non-empty list")),
        };
        let mut resources: Vec<Resource> = Vec::with_capacity(list.len());
        for (i, resource) in list.iter().enumerate() {
            let resource = Resource::parse(resource, i)?;
            if resources.iter().any(|r| r.name == resource.name) {
                return Err(err(format!(
                    "resource {:?}: the name is used twice",
                    resource.name
                )));
            }
            resources.push(resource);
        }
        Ok(Self {
            name,
            title,
            resources,
            raw,
        })
    }
}

impl Resource {
    fn parse(value: &Value, index: usize) -> Result<Self, DescriptorError> {
        let Value::Object(map) = value else {
            return Err(err(format!("resource {index}: must be an object")));
        };
        let place = format!("resource {index}");
        let name = text(map, "name", &place)?
            .ok_or_else(|| err(format!("{place}: no name")))?
            .to_owned();
        if !valid_name(&name) {
            return Err(err(format!(
                "{place}: name {name:?} must be lower-case letters, digits, '.', '_' or '-'"
            )));
        }
        let place = format!("resource {name:?}");
        let path = match map.get("path") {
            Some(Value::String(p)) => p.clone(),
            Some(Value::Array(_)) => {
                return Err(err(format!("{place}: multipart paths are not supported")));
            }
            _ if map.contains_key("data") => {
                return Err(err(format!(
                    "{place}: inline data is not supported, give a path"
                )));
            }
            _ => return Err(err(format!("{place}: no path"))),
        };
        if path.is_empty()
            || path.starts_with('/')
            || path.contains('\\')
            || path.contains("://")
            || path.split('/').any(|s| matches!(s, "" | "." | ".."))
        {
            return Err(err(format!(
                "{place}: path {path:?} must be a relative path inside the package"
            )));
        }
        let format = text(map, "format", &place)?;
        let is_csv = match format {
            Some(f) => f.eq_ignore_ascii_case("csv"),
            None => path.to_ascii_lowercase().ends_with(".csv"),
        };
        if !is_csv {
            return Err(err(format!("{place}: only CSV resources are supported")));
        }
        if let Some(encoding) = text(map, "encoding", &place)? {
            let e = encoding.to_ascii_lowercase();
            if !matches!(e.as_str(), "utf-8" | "utf8" | "utf-8-sig") {
                return Err(err(format!(
                    "{place}: encoding {encoding:?} is not supported (UTF-8 only)"
                )));
            }
        }
        let dialect = match map.get("dialect") {
            None | Some(Value::Null) => Dialect::default(),
            Some(Value::Object(d)) => {
                let place = format!("{place} dialect");
                Dialect {
                    delimiter: one_char(d, "delimiter", b',', &place)?,
                    quote: one_char(d, "quoteChar", b'"', &place)?,
                    double_quote: flag(d, "doubleQuote", true, &place)?,
                    header: flag(d, "header", true, &place)?,
                }
            }
            Some(_) => return Err(err(format!("{place}: dialect must be an object"))),
        };
        let schema = match map.get("schema") {
            Some(Value::Object(s)) => s,
            Some(Value::String(_)) => {
                return Err(err(format!(
                    "{place}: a schema by reference is not supported, inline it"
                )));
            }
            _ => return Err(err(format!("{place}: no schema"))),
        };
        let fields_json = match schema.get("fields") {
            Some(Value::Array(f)) if !f.is_empty() => f,
            _ => {
                return Err(err(format!(
                    "{place}: schema.fields must be a non-empty list"
                )));
            }
        };
        let mut fields: Vec<Field> = Vec::with_capacity(fields_json.len());
        for (i, field) in fields_json.iter().enumerate() {
            let field = Field::parse(field, i, &place)?;
            if fields.iter().any(|f| f.name == field.name) {
                return Err(err(format!(
                    "{place} field {:?}: the name is used twice",
                    field.name
                )));
            }
            fields.push(field);
        }
        let missing_values = match schema.get("missingValues") {
            None => vec![String::new()],
            Some(Value::Array(values)) => values
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| err(format!("{place}: schema.missingValues must be strings")))?,
            Some(_) => return Err(err(format!("{place}: schema.missingValues must be a list"))),
        };
        let key_names: Vec<&str> = match schema.get("primaryKey") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(k)) => vec![k.as_str()],
            Some(Value::Array(keys)) => keys
                .iter()
                .map(Value::as_str)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| err(format!("{place}: schema.primaryKey must name fields")))?,
            Some(_) => return Err(err(format!("{place}: schema.primaryKey must name fields"))),
        };
        let primary_key = key_names
            .iter()
            .map(|k| {
                fields
                    .iter()
                    .position(|f| f.name == *k)
                    .ok_or_else(|| err(format!("{place}: primaryKey names no field {k:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            name,
            path,
            dialect,
            fields,
            primary_key,
            missing_values,
        })
    }
}

impl Field {
    fn parse(value: &Value, index: usize, resource: &str) -> Result<Self, DescriptorError> {
        let Value::Object(raw) = value else {
            return Err(err(format!("{resource} field {index}: must be an object")));
        };
        let name = match text(raw, "name", &format!("{resource} field {index}"))? {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => return Err(err(format!("{resource} field {index}: no name"))),
        };
        let place = format!("{resource} field {name:?}");
        let ty = match text(raw, "type", &place)? {
            None => FieldType::String,
            Some(t) => FieldType::parse(t)
                .ok_or_else(|| err(format!("{place}: type {t:?} is not supported")))?,
        };
        let format_name = text(raw, "format", &place)?.unwrap_or("default");
        let mut format = StringFormat::Default;
        let mut date_format = None;
        match ty {
            FieldType::String => {
                format = match format_name {
                    "default" => StringFormat::Default,
                    "email" => StringFormat::Email,
                    "uri" => StringFormat::Uri,
                    "uuid" => StringFormat::Uuid,
                    other => {
                        return Err(err(format!(
                            "{place}: string format {other:?} is not supported"
                        )));
                    }
                };
            }
            FieldType::Date => match format_name {
                "default" | "any" => {}
                f if f.contains('%') => {
                    check_date_format(f).map_err(|m| err(format!("{place}: {m}")))?;
                    date_format = Some(f.to_owned());
                }
                other => {
                    return Err(err(format!(
                        "{place}: date format {other:?} is not supported"
                    )));
                }
            },
            _ if format_name != "default" => {
                return Err(err(format!(
                    "{place}: format {format_name:?} is not supported for type {}",
                    ty.name()
                )));
            }
            _ => {}
        }
        let strings = |key: &str, default: &[&str]| -> Result<Vec<String>, DescriptorError> {
            match raw.get(key) {
                None => Ok(default.iter().map(|s| (*s).to_owned()).collect()),
                Some(Value::Array(v)) => v
                    .iter()
                    .map(|x| x.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| err(format!("{place}: {key} must be strings"))),
                Some(_) => Err(err(format!("{place}: {key} must be a list"))),
            }
        };
        let char_of = |key: &str| -> Result<Option<char>, DescriptorError> {
            match text(raw, key, &place)? {
                None => Ok(None),
                Some(s) if s.chars().count() == 1 => Ok(s.chars().next()),
                Some(s) => Err(err(format!("{place}: {key} {s:?} must be one character"))),
            }
        };
        let mut field = Self {
            name,
            ty,
            format,
            date_format,
            bare_number: flag(raw, "bareNumber", true, &place)?,
            decimal_char: char_of("decimalChar")?.unwrap_or('.'),
            group_char: char_of("groupChar")?,
            true_values: strings("trueValues", &["true", "True", "TRUE", "1"])?,
            false_values: strings("falseValues", &["false", "False", "FALSE", "0"])?,
            constraints: Constraints::default(),
            column_type: text(raw, "columnType", &place)?.map(str::to_owned),
            raw: raw.clone(),
        };
        field.constraints = match raw.get("constraints") {
            None | Some(Value::Null) => Constraints::default(),
            Some(Value::Object(c)) => field.parse_constraints(c, &place)?,
            Some(_) => return Err(err(format!("{place}: constraints must be an object"))),
        };
        Ok(field)
    }

    fn parse_constraints(
        &self,
        c: &Map<String, Value>,
        place: &str,
    ) -> Result<Constraints, DescriptorError> {
        let length = |key: &str| -> Result<Option<usize>, DescriptorError> {
            match c.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .map(Some)
                    .ok_or_else(|| err(format!("{place}: {key} must be a non-negative integer"))),
            }
        };
        let bound = |key: &str| -> Result<Option<Cell>, DescriptorError> {
            match c.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => self
                    .constraint_value(v)
                    .map(Some)
                    .ok_or_else(|| err(format!("{place}: {key} {v} is not a {}", self.ty.name()))),
            }
        };
        let pattern = match text(c, "pattern", place)? {
            None => None,
            Some(p) => Some(Regex::new(&format!("^(?:{p})$")).map_err(|e| {
                err(format!(
                    "{place}: pattern {p:?} is not a regular expression: {e}"
                ))
            })?),
        };
        let one_of = match c.get("enum") {
            None | Some(Value::Null) => None,
            Some(Value::Array(values)) => Some(
                values
                    .iter()
                    .map(|v| {
                        self.constraint_value(v).ok_or_else(|| {
                            err(format!(
                                "{place}: enum value {v} is not a {}",
                                self.ty.name()
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(_) => return Err(err(format!("{place}: enum must be a list"))),
        };
        Ok(Constraints {
            required: flag(c, "required", false, place)?,
            unique: flag(c, "unique", false, place)?,
            min_length: length("minLength")?,
            max_length: length("maxLength")?,
            minimum: bound("minimum")?,
            maximum: bound("maximum")?,
            pattern,
            one_of,
        })
    }

    /// A constraint value (JSON number, bool or string) as this field's type.
    fn constraint_value(&self, value: &Value) -> Option<Cell> {
        match value {
            Value::String(s) => self.cast(s).ok(),
            Value::Number(n) if matches!(self.ty, FieldType::Number | FieldType::Integer) => {
                n.as_f64().map(Cell::Number)
            }
            Value::Number(n) if self.ty == FieldType::Year => {
                n.as_i64().map(|y| Cell::Moment(y, 0, 0, 0))
            }
            Value::Number(n) if self.ty == FieldType::Any => Some(Cell::Text(n.to_string())),
            Value::Bool(b) if self.ty == FieldType::Boolean => Some(Cell::Bool(*b)),
            _ => None,
        }
    }

    /// The cell as this field's type, or why it is not one.
    pub fn cast(&self, cell: &str) -> Result<Cell, String> {
        let bad = || format!("{cell:?} is not a {}", self.ty.name());
        match self.ty {
            FieldType::String => {
                match self.format {
                    StringFormat::Default => {}
                    StringFormat::Email => {
                        let ok = cell.split_once('@').is_some_and(|(l, d)| {
                            !l.is_empty()
                                && !d.is_empty()
                                && !cell.contains(char::is_whitespace)
                                && !d.contains('@')
                        });
                        if !ok {
                            return Err(format!("{cell:?} is not an email address"));
                        }
                    }
                    StringFormat::Uri => {
                        let ok = cell.split_once(':').is_some_and(|(scheme, rest)| {
                            !rest.is_empty()
                                && scheme
                                    .chars()
                                    .next()
                                    .is_some_and(|c| c.is_ascii_alphabetic())
                                && scheme.chars().all(|c| {
                                    c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')
                                })
                        }) && !cell.contains(char::is_whitespace);
                        if !ok {
                            return Err(format!("{cell:?} is not a URI"));
                        }
                    }
                    StringFormat::Uuid => {
                        if !is_uuid(cell) {
                            return Err(format!("{cell:?} is not a UUID"));
                        }
                    }
                }
                Ok(Cell::Text(cell.to_owned()))
            }
            FieldType::Any => Ok(Cell::Text(cell.to_owned())),
            FieldType::Integer => {
                parse_integer(cell, self.bare_number, self.group_char).ok_or_else(bad)
            }
            FieldType::Number => {
                parse_number(cell, self.bare_number, self.decimal_char, self.group_char)
                    .ok_or_else(bad)
            }
            FieldType::Boolean => {
                if self.true_values.iter().any(|v| v == cell) {
                    Ok(Cell::Bool(true))
                } else if self.false_values.iter().any(|v| v == cell) {
                    Ok(Cell::Bool(false))
                } else {
                    Err(bad())
                }
            }
            FieldType::Date => match &self.date_format {
                None => parse_date(cell).ok_or_else(bad),
                Some(format) => parse_date_with(cell, format).ok_or_else(bad),
            },
            FieldType::Datetime => parse_datetime(cell).ok_or_else(bad),
            FieldType::Time => parse_time(cell)
                .map(|s| Cell::Moment(0, 0, 0, s))
                .ok_or_else(bad),
            FieldType::Year => {
                let digits = cell.strip_prefix('-').unwrap_or(cell);
                if digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()) {
                    cell.parse()
                        .map(|y| Cell::Moment(y, 0, 0, 0))
                        .map_err(|_| bad())
                } else {
                    Err(bad())
                }
            }
            FieldType::Yearmonth => {
                let (y, m) = cell.split_once('-').ok_or_else(bad)?;
                let year = digits(y, 4).ok_or_else(bad)?;
                let month = digits(m, 2).ok_or_else(bad)?;
                if (1..=12).contains(&month) {
                    Ok(Cell::Moment(i64::from(year), month, 0, 0))
                } else {
                    Err(bad())
                }
            }
        }
    }

    /// Checks a present (non-missing) cell: type, format and value constraints. The
    /// `required` and `unique` constraints are the loader's (they need the row context).
    pub fn check(&self, cell: &str) -> Result<(), String> {
        let value = self.cast(cell)?;
        let c = &self.constraints;
        if c.min_length.is_some() || c.max_length.is_some() {
            let len = cell.chars().count();
            if let Some(min) = c.min_length.filter(|m| len < *m) {
                return Err(format!("{cell:?} is shorter than minLength {min}"));
            }
            if let Some(max) = c.max_length.filter(|m| len > *m) {
                return Err(format!("{cell:?} is longer than maxLength {max}"));
            }
        }
        if let Some(min) = &c.minimum
            && value.compare(min) == Some(Ordering::Less)
        {
            return Err(format!("{cell:?} is below the minimum {}", show(min)));
        }
        if let Some(max) = &c.maximum
            && value.compare(max) == Some(Ordering::Greater)
        {
            return Err(format!("{cell:?} is above the maximum {}", show(max)));
        }
        if let Some(pattern) = &c.pattern
            && !pattern.is_match(cell)
        {
            return Err(format!("{cell:?} does not match the pattern"));
        }
        if let Some(one_of) = &c.one_of
            && !one_of
                .iter()
                .any(|v| v.compare(&value) == Some(Ordering::Equal))
        {
            return Err(format!("{cell:?} is not one of the enum values"));
        }
        Ok(())
    }
}

fn show(cell: &Cell) -> String {
    match cell {
        Cell::Text(s) => s.clone(),
        Cell::Number(n) => n.to_string(),
        Cell::Bool(b) => b.to_string(),
        Cell::Moment(y, m, d, s) => format!("{y:04}-{m:02}-{d:02}+{s}s"),
    }
}

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Strips what a non-bare number may carry around it (currency signs, `%`, spaces).
fn strip_non_bare(cell: &str) -> &str {
    cell.trim_matches(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | ',')))
}

fn parse_integer(cell: &str, bare: bool, group: Option<char>) -> Option<Cell> {
    let mut s = if bare { cell } else { strip_non_bare(cell) };
    let owned;
    if let Some(g) = group {
        owned = s.replace(g, "");
        s = &owned;
    }
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<f64>().ok().map(Cell::Number)
}

fn parse_number(cell: &str, bare: bool, decimal: char, group: Option<char>) -> Option<Cell> {
    let trimmed = if bare { cell } else { strip_non_bare(cell) };
    let mut s: String = match group {
        Some(g) => trimmed.chars().filter(|c| *c != g).collect(),
        None => trimmed.to_owned(),
    };
    if decimal != '.' {
        s = s.replace(decimal, ".");
    }
    match s.as_str() {
        "NaN" | "nan" => return Some(Cell::Number(f64::NAN)),
        "INF" | "inf" | "Infinity" => return Some(Cell::Number(f64::INFINITY)),
        "-INF" | "-inf" | "-Infinity" => return Some(Cell::Number(f64::NEG_INFINITY)),
        _ => {}
    }
    // Only digits, one sign, one point and an exponent: Rust's parser also takes "inf".
    let body = s.strip_prefix(['-', '+']).unwrap_or(&s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mantissa_ok = !mantissa.is_empty()
        && mantissa != "."
        && mantissa.bytes().filter(|b| *b == b'.').count() <= 1
        && mantissa.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    if !(mantissa_ok && exponent_ok) {
        return None;
    }
    s.parse::<f64>().ok().map(Cell::Number)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

fn ymd(year: i64, month: u32, day: u32) -> Option<Cell> {
    (year >= 1 && (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month))
        .then_some(Cell::Moment(year, month, day, 0))
}

fn parse_date(cell: &str) -> Option<Cell> {
    let b = cell.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    ymd(
        i64::from(digits(&cell[0..4], 4)?),
        digits(&cell[5..7], 2)?,
        digits(&cell[8..10], 2)?,
    )
}

fn check_date_format(format: &str) -> Result<(), String> {
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c == '%' && !matches!(chars.next(), Some('Y' | 'm' | 'd' | '%')) {
            return Err(format!(
                "date format {format:?}: only %Y, %m and %d are supported"
            ));
        }
    }
    Ok(())
}

/// A date in a `%Y`/`%m`/`%d` format (zero-padded, as Python's `strptime` also accepts
/// unpadded months and days).
fn parse_date_with(cell: &str, format: &str) -> Option<Cell> {
    let (mut year, mut month, mut day) = (None, None, None);
    let mut rest = cell;
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            let spec = chars.next()?;
            if spec == '%' {
                rest = rest.strip_prefix('%')?;
                continue;
            }
            let max = if spec == 'Y' { 4 } else { 2 };
            let len = rest
                .bytes()
                .take(max)
                .take_while(u8::is_ascii_digit)
                .count();
            if len == 0 || (spec == 'Y' && len != 4) {
                return None;
            }
            let n: u32 = rest[..len].parse().ok()?;
            rest = &rest[len..];
            match spec {
                'Y' => year = Some(i64::from(n)),
                'm' => month = Some(n),
                _ => day = Some(n),
            }
        } else {
            rest = rest.strip_prefix(c)?;
        }
    }
    if !rest.is_empty() {
        return None;
    }
    ymd(year.unwrap_or(1900), month.unwrap_or(1), day.unwrap_or(1))
}

fn parse_time(cell: &str) -> Option<u32> {
    let b = cell.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, m, s) = (
        digits(&cell[0..2], 2)?,
        digits(&cell[3..5], 2)?,
        digits(&cell[6..8], 2)?,
    );
    if h > 23 || m > 59 || s > 59 {
        return None;
    }
    let rest = &cell[8..];
    let rest = match rest.strip_prefix('.') {
        Some(frac) => {
            let n = frac.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return None;
            }
            &frac[n..]
        }
        None => rest,
    };
    let zone_ok = match rest {
        "" | "Z" => true,
        z => {
            let zb = z.as_bytes();
            zb.len() == 6
                && matches!(zb[0], b'+' | b'-')
                && zb[3] == b':'
                && digits(&z[1..3], 2).is_some_and(|h| h <= 23)
                && digits(&z[4..6], 2).is_some_and(|m| m <= 59)
        }
    };
    zone_ok.then_some(h * 3600 + m * 60 + s)
}

fn parse_datetime(cell: &str) -> Option<Cell> {
    if cell.len() < 19 || !matches!(cell.as_bytes()[10], b'T' | b' ') {
        return None;
    }
    let Cell::Moment(y, m, d, _) = parse_date(cell.get(..10)?)? else {
        return None;
    };
    let seconds = parse_time(cell.get(11..)?)?;
    Some(Cell::Moment(y, m, d, seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(spec: Value) -> Field {
        Field::parse(&spec, 0, "resource \"r\"").unwrap()
    }

    #[test]
    fn types_cast_and_refuse() {
        let int = field(json!({"name": "n", "type": "integer"}));
        assert!(int.check("12").is_ok());
        assert!(int.check("-3").is_ok());
        for bad in ["1.5", "", "x", "1e3", " 1"] {
            assert!(int.check(bad).is_err(), "{bad}");
        }
        let num = field(json!({"name": "n", "type": "number"}));
        for ok in ["1", "1.5", "-2e3", ".5", "NaN", "INF"] {
            assert!(num.check(ok).is_ok(), "{ok}");
        }
        for bad in ["abc", "1,5", "1.2.3", "inf1", "e3", "."] {
            assert!(num.check(bad).is_err(), "{bad}");
        }
        let grouped =
            field(json!({"name": "n", "type": "number", "groupChar": ",", "decimalChar": "."}));
        assert_eq!(grouped.cast("1,234.5").unwrap(), Cell::Number(1234.5));
        let date = field(json!({"name": "d", "type": "date"}));
        assert!(date.check("2020-02-29").is_ok());
        for bad in ["2019-02-29", "2020-13-01", "20200101", "2020-1-01"] {
            assert!(date.check(bad).is_err(), "{bad}");
        }
        let custom = field(json!({"name": "d", "type": "date", "format": "%d/%m/%Y"}));
        assert!(custom.check("31/12/2020").is_ok());
        assert!(custom.check("2020-12-31").is_err());
        let boolean = field(json!({"name": "b", "type": "boolean"}));
        assert_eq!(boolean.cast("TRUE").unwrap(), Cell::Bool(true));
        assert!(boolean.check("yes").is_err());
        let dt = field(json!({"name": "t", "type": "datetime"}));
        assert!(dt.check("2020-01-01T10:00:00Z").is_ok());
        assert!(dt.check("2020-01-01T25:00:00Z").is_err());
        let year = field(json!({"name": "y", "type": "year"}));
        assert!(year.check("2020").is_ok());
        assert!(year.check("20").is_err());
        let email = field(json!({"name": "e", "format": "email"}));
        assert!(email.check("a@b.org").is_ok());
        assert!(email.check("nope").is_err());
    }

    #[test]
    fn constraints_hold() {
        let f = field(json!({"name": "n", "type": "integer",
            "constraints": {"minimum": 0, "maximum": 10, "enum": [1, 2, 3, 11]}}));
        assert!(f.check("2").is_ok());
        assert!(f.check("11").unwrap_err().contains("maximum"));
        assert!(f.check("4").unwrap_err().contains("enum"));
        let s = field(json!({"name": "s", "constraints": {"pattern": "[A-Z]{2}", "minLength": 2}}));
        assert!(s.check("DE").is_ok());
        assert!(s.check("DEU").is_err());
        let d =
            field(json!({"name": "d", "type": "date", "constraints": {"minimum": "2000-01-01"}}));
        assert!(d.check("1999-12-31").is_err());
        assert!(d.check("2000-01-01").is_ok());
    }

    #[test]
    fn descriptors_are_checked() {
        let ok = json!({"name": "p", "resources": [{"name": "r", "path": "data/r.csv",
            "schema": {"fields": [{"name": "a", "type": "integer"}], "primaryKey": "a"}}]});
        let p = PackageDescriptor::parse(ok.to_string().as_bytes()).unwrap();
        assert_eq!(p.resources[0].primary_key, vec![0]);
        for (bad, says) in [
            (json!({"resources": []}), "no name"),
            (json!({"name": "P", "resources": [{}]}), "name \"P\""),
            (json!({"name": "p", "resources": []}), "non-empty"),
            (
                json!({"name": "p", "resources": [{"name": "r", "path": "../x.csv", "schema": {"fields": [{"name": "a"}]}}]}),
                "relative",
            ),
            (
                json!({"name": "p", "resources": [{"name": "r", "path": "x.csv", "schema": {"fields": [{"name": "a", "type": "decimal"}]}}]}),
                "\"decimal\"",
            ),
            (
                json!({"name": "p", "resources": [{"name": "r", "path": "x.csv"}]}),
                "no schema",
            ),
            (
                json!({"name": "p", "resources": [{"name": "r", "path": "x.csv", "schema": {"fields": [{"name": "a"}], "primaryKey": "b"}}]}),
                "primaryKey",
            ),
            (
                json!({"name": "p", "resources": [{"name": "r", "path": "x.csv", "encoding": "latin-1", "schema": {"fields": [{"name": "a"}]}}]}),
                "encoding",
            ),
        ] {
            let e = PackageDescriptor::parse(bad.to_string().as_bytes()).unwrap_err();
            assert!(e.0.contains(says), "{e} should say {says}");
        }
        assert!(
            PackageDescriptor::parse(b"{nope")
                .unwrap_err()
                .0
                .contains("not valid JSON")
        );
    }
}
