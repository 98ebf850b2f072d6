//! The DAO contract and the stored document shape against a real MongoDB-compatible server.
//!
//! Start one with `scripts/test-infra up mongo` and `eval "$(scripts/test-infra env)"`.
//! Without `TESSERA_TEST_MONGO_URL` every test prints `SKIPPED: …` and passes, unless
//! `TESSERA_REQUIRE_INFRA=1`, which makes a missing server a failure. Each test works in a
//! fresh database with a random name and drops it at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns

use std::sync::Arc;

use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Bson, Document as BsonDocument, doc};
use serde_json::{Value, json};
use tessera_kit::dao::{
    CollectionSpec, DaoFactory, Document, DocumentDao, Error, FieldKind, Filter,
};
use tessera_mongodb::{MongoConfig, MongoDaoFactory};
use tessera_test_support::infra;

const U1: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const U2: &str = "16fd2706-8baf-433b-82eb-8c7fada847da";

/// A fresh database, through the provider and through the raw driver.
struct TestDb {
    factory: MongoDaoFactory,
    raw: mongodb::Database,
}

impl TestDb {
    async fn new() -> Option<Self> {
        let url = infra::server(infra::MONGO_URL)?;
        let name = format!(
            "tessera_test_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let config = MongoConfig {
            mongo_dsn: url.as_str().into(),
            db_name: name.clone(),
            mongo_timeout: Some(30),
        };
        let factory = MongoDaoFactory::connect(&config).await.unwrap();
        assert_eq!(factory.db_name(), name);
        let raw = mongodb::Client::with_uri_str(&url)
            .await
            .unwrap()
            .database(&name);
        Some(Self { factory, raw })
    }

    async fn dao(&self, spec: CollectionSpec) -> Arc<dyn DocumentDao> {
        self.factory.document_dao(spec).await.unwrap()
    }

    fn coll(&self, name: &str) -> mongodb::Collection<BsonDocument> {
        self.raw.collection(name)
    }

    async fn drop(self) {
        self.raw.drop().await.unwrap();
    }
}

fn obj(v: Value) -> Document {
    v.as_object().cloned().unwrap()
}

fn uuid_bin(s: &str) -> Bson {
    Bson::Binary(mongodb::bson::Binary {
        subtype: BinarySubtype::Uuid,
        bytes: uuid::Uuid::parse_str(s).unwrap().as_bytes().to_vec(),
    })
}

fn millis(rfc3339: &str) -> Bson {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap();
    Bson::DateTime(mongodb::bson::DateTime::from_millis(t.timestamp_millis()))
}

#[tokio::test]
async fn passes_the_dao_contract() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    tessera_kit::testsuite::dao_suite(&db.factory).await;
    db.drop().await;
}

#[tokio::test]
async fn stores_the_hexkit_document_shape() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let spec = CollectionSpec::new("orders", "order_id")
        .kind("order_id", FieldKind::Uuid)
        .kind("ref", FieldKind::Uuid)
        .kind("created", FieldKind::DateTime);
    let dao = db.dao(spec).await;
    dao.insert(obj(json!({
        "order_id": U1, "ref": U2.to_uppercase(), "created": "2024-05-06T09:08:09.123456+02:00",
        "n": 5, "big": 5_000_000_000_i64, "f": 1.5, "tags": ["x"], "nested": {"a": {"b": null}}
    })))
    .await
    .unwrap();

    let raw = db
        .coll("orders")
        .find_one(doc! {})
        .await
        .unwrap()
        .expect("the document is stored");
    assert_eq!(
        raw.get("_id"),
        Some(&uuid_bin(U1)),
        "a UUID id is binary subtype 4"
    );
    assert!(
        !raw.contains_key("order_id"),
        "the id field is stored as _id only"
    );
    assert_eq!(raw.get("ref"), Some(&uuid_bin(U2)));
    assert_eq!(
        raw.get("created"),
        Some(&millis("2024-05-06T07:08:09.123Z")),
        "datetimes are BSON dates truncated to milliseconds"
    );
    assert_eq!(raw.get("n"), Some(&Bson::Int32(5)));
    assert_eq!(raw.get("big"), Some(&Bson::Int64(5_000_000_000)));
    assert_eq!(raw.get("f"), Some(&Bson::Double(1.5)));
    assert_eq!(raw.get("tags"), Some(&Bson::Array(vec!["x".into()])));
    assert_eq!(
        raw.get("nested"),
        Some(&Bson::Document(doc! {"a": {"b": Bson::Null}}))
    );

    let got = dao.get_by_id(U1).await.unwrap();
    assert_eq!(
        got,
        obj(json!({
            "order_id": U1, "ref": U2, "created": "2024-05-06T07:08:09.123Z",
            "n": 5, "big": 5_000_000_000_i64, "f": 1.5, "tags": ["x"], "nested": {"a": {"b": null}}
        }))
    );
    assert_eq!(
        dao.get_by_id(&U1.to_uppercase()).await.unwrap()["order_id"],
        json!(U1),
        "any spelling of the UUID finds it"
    );
    for (field, value) in [
        ("ref", json!(U2.to_uppercase())),
        ("order_id", json!(U1)),
        ("created", json!("2024-05-06T07:08:09.123Z")),
        ("created", json!("2024-05-06T09:08:09.123+02:00")),
    ] {
        let filter: Filter = [(field.to_owned(), value)].into();
        assert_eq!(dao.find_all(&filter).await.unwrap().len(), 1, "{field}");
    }
    let by_other_date: Filter = [("created".to_owned(), json!("2024-05-06T07:08:09.124Z"))].into();
    assert!(dao.find_all(&by_other_date).await.unwrap().is_empty());

    // A document written by another service in the same shape reads back the same way.
    db.coll("orders")
        .insert_one(doc! {"_id": uuid_bin(U2), "created": millis("2000-01-01T00:00:00Z")})
        .await
        .unwrap();
    assert_eq!(
        dao.get_by_id(U2).await.unwrap(),
        obj(json!({"order_id": U2, "created": "2000-01-01T00:00:00.000Z"}))
    );
    let ids: Vec<Value> = dao
        .find_all(&Filter::new())
        .await
        .unwrap()
        .into_iter()
        .map(|d| d["order_id"].clone())
        .collect();
    assert_eq!(
        ids,
        [json!(U2), json!(U1)],
        "id order is the binary order of the UUIDs"
    );
    db.drop().await;
}

#[tokio::test]
async fn values_that_do_not_parse_as_their_kind_store_nothing() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let spec = CollectionSpec::new("things", "id")
        .kind("id", FieldKind::Uuid)
        .kind("at", FieldKind::DateTime);
    let dao = db.dao(spec).await;
    for bad in [
        json!({"id": "not-a-uuid"}),
        json!({"id": U1, "at": "tomorrow"}),
        json!({"id": U1, "at": 1_700_000_000}),
    ] {
        assert!(
            matches!(
                dao.insert(obj(bad.clone())).await,
                Err(Error::InvalidDocument { .. })
            ),
            "{bad}"
        );
        assert!(matches!(
            dao.upsert(obj(bad.clone())).await,
            Err(Error::InvalidDocument { .. })
        ));
    }
    assert_eq!(db.coll("things").count_documents(doc! {}).await.unwrap(), 0);
    assert!(matches!(
        dao.get_by_id("not-a-uuid").await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        dao.delete("not-a-uuid").await,
        Err(Error::NotFound { .. })
    ));
    dao.insert(obj(json!({"id": U1, "at": null})))
        .await
        .unwrap();
    let bad_filter: Filter = [("at".to_owned(), json!("whenever"))].into();
    assert!(dao.find_all(&bad_filter).await.unwrap().is_empty());
    let null_filter: Filter = [("at".to_owned(), Value::Null)].into();
    assert_eq!(dao.find_all(&null_filter).await.unwrap().len(), 1);
    db.drop().await;
}

#[tokio::test]
async fn duplicate_keys_name_the_field_and_write_nothing() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let spec = CollectionSpec::new("people", "id")
        .unique("email")
        .unique("code")
        .kind("code", FieldKind::Uuid);
    let dao = db.dao(spec.clone()).await;
    let ada = obj(json!({"id": "ada", "email": "ada@x", "code": U1}));
    dao.insert(ada.clone()).await.unwrap();
    dao.insert(obj(json!({"id": "bob", "email": "bob@x"})))
        .await
        .unwrap();

    let clash = |field: &str| {
        let field = field.to_owned();
        move |r: Result<(), Error>| match r {
            Err(Error::AlreadyExists {
                field: f,
                collection,
            }) => {
                assert_eq!(collection, "people");
                assert_eq!(f, field);
            }
            other => panic!("expected AlreadyExists on {field}, got {other:?}"),
        }
    };
    clash("id")(
        dao.insert(obj(json!({"id": "ada", "email": "new@x"})))
            .await,
    );
    clash("email")(dao.insert(obj(json!({"id": "cy", "email": "ada@x"}))).await);
    clash("code")(
        dao.insert(obj(json!({"id": "cy", "code": U1.to_uppercase()})))
            .await,
    );
    clash("email")(
        dao.update(obj(json!({"id": "bob", "email": "ada@x"})))
            .await,
    );
    clash("code")(dao.upsert(obj(json!({"id": "bob", "code": U1}))).await);
    clash("email")(
        dao.upsert(obj(json!({"id": "new", "email": "ada@x"})))
            .await,
    );

    assert_eq!(db.coll("people").count_documents(doc! {}).await.unwrap(), 2);
    assert_eq!(dao.get_by_id("ada").await.unwrap(), ada);
    assert_eq!(
        dao.get_by_id("bob").await.unwrap(),
        obj(json!({"id": "bob", "email": "bob@x"})),
        "rejected updates change nothing"
    );

    // The unique indexes are partial: null and missing values never clash.
    let mut indexes = db.coll("people").list_indexes().await.unwrap();
    let mut seen = Vec::new();
    while indexes.advance().await.unwrap() {
        let index = indexes.deserialize_current().unwrap();
        if index.keys.contains_key("_id") {
            continue;
        }
        let options = index.options.unwrap();
        assert_eq!(options.unique, Some(true));
        assert!(options.partial_filter_expression.is_some());
        seen.push(options.name.unwrap());
    }
    seen.sort();
    assert_eq!(seen, ["code_1", "email_1"]);
    for id in ["n1", "n2"] {
        dao.insert(obj(json!({"id": id, "email": null})))
            .await
            .unwrap();
    }

    // Asking again is harmless; a clash with stored data or a foreign index is a bad spec.
    db.dao(spec).await;
    let clashing = CollectionSpec::new("people", "id")
        .unique("email")
        .unique("team");
    db.coll("people")
        .insert_many([
            doc! {"_id": "t1", "team": "a"},
            doc! {"_id": "t2", "team": "a"},
        ])
        .await
        .unwrap();
    assert!(matches!(
        db.factory.document_dao(clashing).await,
        Err(Error::InvalidSpec(_))
    ));
    let model = mongodb::IndexModel::builder()
        .keys(doc! {"tag": 1})
        .options(
            mongodb::options::IndexOptions::builder()
                .name("tag_1".to_owned())
                .unique(true)
                .build(),
        )
        .build();
    db.coll("legacy").create_index(model).await.unwrap();
    assert!(matches!(
        db.factory
            .document_dao(CollectionSpec::new("legacy", "id").unique("tag"))
            .await,
        Err(Error::InvalidSpec(_))
    ));
    db.drop().await;
}

#[tokio::test]
async fn indexed_fields_get_a_plain_index_and_stay_shareable() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let spec = CollectionSpec::new("grants", "id")
        .index("user_id")
        .unique("email")
        .index("email");
    let dao = db.dao(spec.clone()).await;
    let mut indexes = db.coll("grants").list_indexes().await.unwrap();
    let mut seen = Vec::new();
    while indexes.advance().await.unwrap() {
        let index = indexes.deserialize_current().unwrap();
        let options = index.options.unwrap();
        seen.push((options.name.unwrap(), options.unique.unwrap_or(false)));
    }
    seen.sort();
    let expected = [
        ("_id_", false),
        ("email_1", true),
        ("email_lookup", false),
        ("user_id_lookup", false),
    ];
    assert_eq!(seen, expected.map(|(n, u)| (n.to_owned(), u)));
    // Values of an indexed field may repeat; asking again is harmless.
    for id in ["g1", "g2"] {
        dao.insert(obj(json!({"id": id, "user_id": U1})))
            .await
            .unwrap();
    }
    db.dao(spec).await;
    let filter: Filter = [("user_id".to_owned(), json!(U1))].into();
    assert_eq!(dao.find_all(&filter).await.unwrap().len(), 2);
    db.drop().await;
}

#[tokio::test]
async fn numeric_ids_round_trip() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let dao = db.dao(CollectionSpec::new("numbers", "id")).await;
    dao.insert(obj(json!({"id": 42, "x": 1}))).await.unwrap();
    dao.insert(obj(json!({"id": "42b", "x": 2}))).await.unwrap();
    assert_eq!(
        db.coll("numbers")
            .count_documents(doc! {"_id": 42})
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        dao.get_by_id("42").await.unwrap(),
        obj(json!({"id": 42, "x": 1}))
    );
    let by_number: Filter = [("id".to_owned(), json!(42))].into();
    assert_eq!(dao.find_all(&by_number).await.unwrap().len(), 1);
    let by_text: Filter = [("id".to_owned(), json!("42"))].into();
    assert!(
        dao.find_all(&by_text).await.unwrap().is_empty(),
        "filters compare JSON values exactly"
    );
    dao.update(obj(json!({"id": 42, "x": 3}))).await.unwrap();
    assert_eq!(dao.get_by_id("42").await.unwrap()["x"], json!(3));
    dao.delete("42").await.unwrap();
    assert!(matches!(
        dao.delete("42").await,
        Err(Error::NotFound { .. })
    ));
    db.drop().await;
}
