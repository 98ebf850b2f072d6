//! JSON documents to BSON and back, following a collection's [`FieldKind`] hints.
//!
//! The id field is stored as `_id`; `Uuid` fields as binary subtype 4 and `DateTime` fields
//! as BSON dates (millisecond precision). Integers become Int32 when they fit and Int64
//! otherwise, as pymongo writes them, so services in other languages share the data shape.
//! Reading is kind-blind: every UUID binary comes back as a hyphenated lower-case string
//! and every date as RFC 3339 with milliseconds and `Z`.

use chrono::{DateTime, SecondsFormat, Utc};
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{self, Binary, Bson, Document as BsonDocument};
use serde_json::{Map, Number, Value};
use tessera_kit::dao::{CollectionSpec, Document, FieldKind, Filter};

/// The field MongoDB keys documents by.
pub(crate) const ID: &str = "_id";

/// Why a value cannot be converted; the DAO turns it into `InvalidDocument`.
pub(crate) type Reason = String;

/// A document in its stored form.
pub(crate) fn encode_doc(spec: &CollectionSpec, doc: &Document) -> Result<BsonDocument, Reason> {
    let id = doc
        .get(&spec.id_field)
        .ok_or_else(|| format!("field {:?} must hold the id", spec.id_field))?;
    if spec.id_field != ID && doc.contains_key(ID) {
        return Err(format!(
            "field {ID:?} is reserved for the id, which lives in {:?}",
            spec.id_field
        ));
    }
    let mut out = BsonDocument::new();
    out.insert(ID, encode_field(spec, &spec.id_field, id)?);
    for (field, value) in doc {
        if *field != spec.id_field {
            out.insert(field.clone(), encode_field(spec, field, value)?);
        }
    }
    Ok(out)
}

/// A stored document in its JSON form, with `_id` renamed to the id field.
pub(crate) fn decode_doc(spec: &CollectionSpec, doc: &BsonDocument) -> Result<Document, Reason> {
    let mut out = Map::new();
    let mut id = None;
    for (field, value) in doc {
        let json = bson_to_json(value).map_err(|r| format!("stored field {field:?}: {r}"))?;
        if field == ID {
            id = Some(json);
        } else {
            out.insert(field.clone(), json);
        }
    }
    // Inserted last: `_id` wins over a stray stored field of the id's name.
    if let Some(id) = id {
        out.insert(spec.id_field.clone(), id);
    }
    Ok(out)
}

/// The stored values a `get_by_id` / `delete` id may be held as; empty when no document can
/// have it (a malformed UUID for a UUID id).
///
/// [`CollectionSpec::id_of`] turns a numeric id into its JSON text, and numeric ids are
/// stored as numbers, so an id that is the canonical text of a number matches both forms.
pub(crate) fn id_candidates(spec: &CollectionSpec, id: &str) -> Vec<Bson> {
    match spec.field_kinds.get(&spec.id_field) {
        Some(FieldKind::Uuid) => parse_uuid(id).map(uuid_bson).into_iter().collect(),
        Some(FieldKind::DateTime) => parse_datetime(id).map(date_bson).into_iter().collect(),
        None => {
            let mut out = vec![Bson::String(id.to_owned())];
            if let Ok(n) = serde_json::from_str::<Number>(id)
                && n.to_string() == id
                && let Ok(b) = number_to_bson(&n)
            {
                out.push(b);
            }
            out
        }
    }
}

/// An equality filter as a server query plus the check every returned document must pass.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Query {
    /// Narrows the documents on the server; a superset of the matches.
    pub server: BsonDocument,
    /// The filter with kind-hinted values in the form documents are read back in, for
    /// [`tessera_kit::dao::matches`].
    pub check: Filter,
}

/// The query of `filter`, or `None` when no stored document can match (a kind-hinted field
/// compared with a value that does not parse as its kind).
///
/// Only scalars go to the server: MongoDB matches an array field by any of its elements,
/// and sub-documents by field order, neither of which is JSON equality. The final word is
/// the check, as in every provider.
pub(crate) fn encode_filter(spec: &CollectionSpec, filter: &Filter) -> Option<Query> {
    let mut server = BsonDocument::new();
    let mut check = Filter::new();
    for (field, want) in filter {
        let kind = spec.field_kinds.get(field).copied();
        let (stored, read_back) = match (kind, want) {
            (_, Value::Null) => (Bson::Null, Value::Null),
            (Some(FieldKind::Uuid), Value::String(s)) => {
                let u = parse_uuid(s)?;
                (uuid_bson(u), Value::String(format_uuid(u)))
            }
            (Some(FieldKind::DateTime), Value::String(s)) => {
                let t = parse_datetime(s)?;
                (date_bson(t), Value::String(format_millis(t)))
            }
            (Some(_), _) => return None,
            (None, Value::Array(_) | Value::Object(_)) => {
                check.insert(field.clone(), want.clone());
                continue;
            }
            (None, v) => (json_to_bson(v).ok()?, v.clone()),
        };
        // A dotted or `$` name means a path or an operator to MongoDB, not a top-level field.
        let key = if *field == spec.id_field { ID } else { field };
        if !key.contains('.') && !key.starts_with('$') {
            server.insert(key, stored);
        }
        check.insert(field.clone(), read_back);
    }
    Some(Query { server, check })
}

fn encode_field(spec: &CollectionSpec, field: &str, value: &Value) -> Result<Bson, Reason> {
    match (spec.field_kinds.get(field), value) {
        (_, Value::Null) => Ok(Bson::Null),
        (Some(FieldKind::Uuid), Value::String(s)) => parse_uuid(s)
            .map(uuid_bson)
            .ok_or_else(|| format!("field {field:?} must hold a UUID, not {s:?}")),
        (Some(FieldKind::DateTime), Value::String(s)) => parse_datetime(s)
            .map(date_bson)
            .ok_or_else(|| format!("field {field:?} must hold an RFC 3339 datetime, not {s:?}")),
        (Some(FieldKind::Uuid), _) => Err(format!("field {field:?} must hold a UUID string")),
        (Some(FieldKind::DateTime), _) => Err(format!(
            "field {field:?} must hold an RFC 3339 datetime string"
        )),
        (None, v) => json_to_bson(v).map_err(|r| format!("field {field:?}: {r}")),
    }
}

/// A JSON value as BSON, without kind hints.
pub(crate) fn json_to_bson(value: &Value) -> Result<Bson, Reason> {
    Ok(match value {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => number_to_bson(n)?,
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(items) => {
            Bson::Array(items.iter().map(json_to_bson).collect::<Result<_, _>>()?)
        }
        Value::Object(map) => {
            let mut doc = BsonDocument::new();
            for (k, v) in map {
                doc.insert(k.clone(), json_to_bson(v)?);
            }
            Bson::Document(doc)
        }
    })
}

fn number_to_bson(n: &Number) -> Result<Bson, Reason> {
    if let Some(i) = n.as_i64() {
        return Ok(i32::try_from(i).map_or(Bson::Int64(i), Bson::Int32));
    }
    if n.is_u64() {
        return Err(format!("integer {n} does not fit in 64 signed bits"));
    }
    n.as_f64()
        .map(Bson::Double)
        .ok_or_else(|| format!("number {n} is not representable"))
}

/// A BSON value as JSON. Fails on types JSON has no faithful form for.
pub(crate) fn bson_to_json(value: &Bson) -> Result<Value, Reason> {
    Ok(match value {
        Bson::Null | Bson::Undefined => Value::Null,
        Bson::Boolean(b) => Value::Bool(*b),
        Bson::Int32(i) => Value::from(*i),
        Bson::Int64(i) => Value::from(*i),
        Bson::Double(f) => Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(|| format!("{f} has no JSON form"))?,
        Bson::String(s) => Value::String(s.clone()),
        Bson::Array(items) => {
            Value::Array(items.iter().map(bson_to_json).collect::<Result<_, _>>()?)
        }
        Bson::Document(doc) => {
            let mut map = Map::new();
            for (k, v) in doc {
                map.insert(k.clone(), bson_to_json(v)?);
            }
            Value::Object(map)
        }
        Bson::Binary(Binary {
            subtype: BinarySubtype::Uuid,
            bytes,
        }) => {
            let u = uuid::Uuid::from_slice(bytes)
                .map_err(|_| format!("a UUID binary of {} bytes", bytes.len()))?;
            Value::String(format_uuid(u))
        }
        Bson::DateTime(t) => {
            let t = DateTime::<Utc>::from_timestamp_millis(t.timestamp_millis())
                .ok_or_else(|| format!("date {} ms is out of range", t.timestamp_millis()))?;
            Value::String(format_millis(t))
        }
        Bson::ObjectId(oid) => Value::String(oid.to_hex()),
        Bson::Decimal128(d) => Value::String(d.to_string()),
        other => {
            return Err(format!(
                "BSON type {:?} has no JSON form",
                other.element_type()
            ));
        }
    })
}

fn parse_uuid(s: &str) -> Option<uuid::Uuid> {
    uuid::Uuid::parse_str(s).ok()
}

fn uuid_bson(u: uuid::Uuid) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Uuid,
        bytes: u.as_bytes().to_vec(),
    })
}

fn format_uuid(u: uuid::Uuid) -> String {
    u.hyphenated().to_string()
}

fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn date_bson(t: DateTime<Utc>) -> Bson {
    Bson::DateTime(bson::DateTime::from_millis(t.timestamp_millis()))
}

fn format_millis(t: DateTime<Utc>) -> String {
    // Dropping sub-millisecond digits first makes filters agree with what was stored.
    DateTime::<Utc>::from_timestamp_millis(t.timestamp_millis())
        .unwrap_or(t)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;
    use serde_json::json;

    const U: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";

    fn spec() -> CollectionSpec {
        CollectionSpec::new("people", "id")
            .kind("ref", FieldKind::Uuid)
            .kind("since", FieldKind::DateTime)
    }

    fn uuid_spec() -> CollectionSpec {
        CollectionSpec::new("items", "id").kind("id", FieldKind::Uuid)
    }

    fn obj(v: Value) -> Document {
        v.as_object().cloned().unwrap()
    }

    fn uuid_bin(s: &str) -> Bson {
        uuid_bson(uuid::Uuid::parse_str(s).unwrap())
    }

    #[test]
    fn documents_round_trip_with_kinds() {
        let doc = obj(json!({
            "id": "ada", "ref": U, "since": "1843-07-01T10:11:12.345Z", "n": 5,
            "big": 5_000_000_000_i64, "neg": -3, "f": 1.5, "whole": 2.0, "ok": true,
            "none": null, "tags": ["a", 1, null], "nested": {"x": [1, {"y": null}], "s": "t"}
        }));
        let stored = encode_doc(&spec(), &doc).unwrap();
        assert_eq!(stored.get("_id"), Some(&Bson::String("ada".into())));
        assert!(!stored.contains_key("id"), "the id lives in _id only");
        assert_eq!(stored.get("ref"), Some(&uuid_bin(U)));
        assert_eq!(
            stored.get("since"),
            Some(&Bson::DateTime(bson::DateTime::from_millis(
                -3_992_075_327_655
            )))
        );
        assert_eq!(stored.get("n"), Some(&Bson::Int32(5)));
        assert_eq!(stored.get("big"), Some(&Bson::Int64(5_000_000_000)));
        assert_eq!(stored.get("f"), Some(&Bson::Double(1.5)));
        assert_eq!(stored.get("none"), Some(&Bson::Null));
        assert_eq!(
            stored.get("nested"),
            Some(&Bson::Document(
                doc! {"x": [1, {"y": Bson::Null}], "s": "t"}
            ))
        );
        assert_eq!(decode_doc(&spec(), &stored).unwrap(), doc);
    }

    #[test]
    fn kinds_are_normalised_and_truncated_to_milliseconds() {
        let doc = obj(json!({
            "id": "a", "ref": U.to_uppercase(), "since": "2024-02-29T23:30:00.123456+02:00"
        }));
        let back = decode_doc(&spec(), &encode_doc(&spec(), &doc).unwrap()).unwrap();
        assert_eq!(back["ref"], json!(U));
        assert_eq!(back["since"], json!("2024-02-29T21:30:00.123Z"));
        let doc = obj(json!({"id": "a", "since": "2024-01-01T00:00:00Z"}));
        let back = decode_doc(&spec(), &encode_doc(&spec(), &doc).unwrap()).unwrap();
        assert_eq!(back["since"], json!("2024-01-01T00:00:00.000Z"));
    }

    #[test]
    fn a_uuid_id_is_stored_as_binary() {
        let doc = obj(json!({"id": U, "x": 1}));
        let stored = encode_doc(&uuid_spec(), &doc).unwrap();
        assert_eq!(stored.get("_id"), Some(&uuid_bin(U)));
        assert_eq!(decode_doc(&uuid_spec(), &stored).unwrap(), doc);
        assert_eq!(id_candidates(&uuid_spec(), U), vec![uuid_bin(U)]);
        assert!(id_candidates(&uuid_spec(), "not-a-uuid").is_empty());
    }

    #[test]
    fn values_that_do_not_parse_as_their_kind_are_rejected() {
        for bad in [
            json!({"id": "a", "ref": "nope"}),
            json!({"id": "a", "ref": 5}),
            json!({"id": "a", "since": "yesterday"}),
            json!({"id": "a", "since": "2024-01-01"}),
            json!({"id": "a", "since": 1_700_000_000}),
            json!({"id": "a", "n": u64::MAX}),
        ] {
            let err = encode_doc(&spec(), &obj(bad.clone())).unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
        assert!(encode_doc(&uuid_spec(), &obj(json!({"id": "x"}))).is_err());
        // null is "no value" whatever the kind.
        let ok = encode_doc(
            &spec(),
            &obj(json!({"id": "a", "ref": null, "since": null})),
        );
        assert_eq!(ok.unwrap().get("ref"), Some(&Bson::Null));
    }

    #[test]
    fn the_id_is_required_and_underscore_id_is_reserved() {
        let err = encode_doc(&spec(), &obj(json!({"x": 1}))).unwrap_err();
        assert!(err.contains("\"id\""), "{err}");
        let err = encode_doc(&spec(), &obj(json!({"id": "a", "_id": "b"}))).unwrap_err();
        assert!(err.contains("reserved"), "{err}");
        let own = CollectionSpec::new("c", "_id");
        let stored = encode_doc(&own, &obj(json!({"_id": "b", "x": 1}))).unwrap();
        assert_eq!(stored, doc! {"_id": "b", "x": 1});
        assert_eq!(
            decode_doc(&own, &stored).unwrap(),
            obj(json!({"_id": "b", "x": 1}))
        );
    }

    #[test]
    fn numeric_ids_round_trip_and_match_their_text() {
        let doc = obj(json!({"id": 42, "x": 1}));
        let stored = encode_doc(&spec(), &doc).unwrap();
        assert_eq!(stored.get("_id"), Some(&Bson::Int32(42)));
        assert_eq!(decode_doc(&spec(), &stored).unwrap(), doc);
        assert_eq!(
            id_candidates(&spec(), "42"),
            vec![Bson::String("42".into()), Bson::Int32(42)]
        );
        assert_eq!(
            id_candidates(&spec(), "042"),
            vec![Bson::String("042".into())]
        );
        assert_eq!(
            id_candidates(&spec(), "ab"),
            vec![Bson::String("ab".into())]
        );
    }

    #[test]
    fn reading_maps_foreign_types_or_refuses() {
        let oid = bson::oid::ObjectId::new();
        let stored = doc! {"_id": oid, "d": bson::DateTime::from_millis(1), "u": uuid_bin(U)};
        let back = decode_doc(&CollectionSpec::new("c", "id"), &stored).unwrap();
        assert_eq!(back["id"], json!(oid.to_hex()));
        assert_eq!(back["d"], json!("1970-01-01T00:00:00.001Z"));
        assert_eq!(
            back["u"],
            json!(U),
            "UUID binaries read back whatever the kind"
        );
        for bad in [
            doc! {"_id": "a", "x": f64::NAN},
            doc! {"_id": "a", "x": Bson::Timestamp(bson::Timestamp { time: 1, increment: 1 })},
            doc! {"_id": "a", "x": Binary { subtype: BinarySubtype::Uuid, bytes: vec![1, 2] }},
            doc! {"_id": "a", "x": Binary { subtype: BinarySubtype::Generic, bytes: vec![1] }},
        ] {
            assert!(decode_doc(&spec(), &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters_convert_kinds_and_leave_structures_to_the_check() {
        let filter: Filter = [
            ("id".to_owned(), json!("ada")),
            ("ref".to_owned(), json!(U.to_uppercase())),
            ("since".to_owned(), json!("1843-07-01T11:11:12.345+01:00")),
            ("age".to_owned(), json!(36)),
            ("gone".to_owned(), Value::Null),
            ("tags".to_owned(), json!(["a"])),
            ("nested".to_owned(), json!({"x": 1})),
            ("a.b".to_owned(), json!(1)),
        ]
        .into();
        let q = encode_filter(&spec(), &filter).unwrap();
        assert_eq!(
            q.server,
            doc! {
                "_id": "ada", "age": 36, "gone": Bson::Null, "ref": uuid_bin(U),
                "since": bson::DateTime::from_millis(-3_992_075_327_655),
            }
        );
        assert_eq!(q.check["ref"], json!(U));
        assert_eq!(q.check["since"], json!("1843-07-01T10:11:12.345Z"));
        assert_eq!(q.check["tags"], json!(["a"]));
        assert_eq!(q.check["a.b"], json!(1));
        assert_eq!(q.check.len(), filter.len());
    }

    #[test]
    fn filters_that_cannot_match_are_none() {
        for (field, value) in [
            ("ref", json!("nope")),
            ("ref", json!(3)),
            ("since", json!("soon")),
            ("n", json!(u64::MAX)),
        ] {
            let filter: Filter = [(field.to_owned(), value)].into();
            assert_eq!(encode_filter(&spec(), &filter), None, "{field}");
        }
        let empty = encode_filter(&spec(), &Filter::new()).unwrap();
        assert!(empty.server.is_empty() && empty.check.is_empty());
    }
}
