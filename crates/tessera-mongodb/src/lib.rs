//! Tessera's MongoDB provider: the kit's DAO protocol
//! ([`DaoFactory`](tessera_kit::dao::DaoFactory), [`DocumentDao`](tessera_kit::dao::DocumentDao))
//! on the `mongodb` driver, storing documents the way GHGA's hexkit does, so that services
//! in either language can share a database.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use tessera_kit::dao::DaoFactory;
//! use tessera_mongodb::{MongoConfig, MongoDaoFactory};
//!
//! let config = MongoConfig {
//!     mongo_dsn: "mongodb://127.0.0.1:27017/".into(),
//!     db_name: "wps".into(),
//!     mongo_timeout: Some(10),
//! };
//! let factory: Arc<dyn DaoFactory> = Arc::new(MongoDaoFactory::connect(&config).await?);
//! # Ok(()) }
//! ```
//!
//! # Document shape
//! - The spec's `id_field` is stored as `_id` and renamed back on reading.
//! - `FieldKind::Uuid` fields (the id included) are BSON binary subtype 4 and read back as
//!   hyphenated lower-case strings; `FieldKind::DateTime` fields are BSON dates (millisecond
//!   precision) read back as RFC 3339 with milliseconds and `Z`. A value that does not parse
//!   as its kind is `InvalidDocument`. `null` is allowed whatever the kind.
//! - Everything else maps naturally: integers as Int32 or Int64, floats as doubles, objects
//!   as sub-documents, arrays as arrays.
//! - Numeric ids are stored as numbers; `get_by_id("42")` and `delete("42")` match the
//!   string `"42"` and the number 42 (do not mix both forms in one collection).
//!
//! # Semantics
//! Unique fields get partial unique indexes `<field>_1` (documents without the field or
//! with `null` never clash); a duplicate key is `AlreadyExists` naming the field. Filters
//! are equalities with the same kind conversions, run on the server where MongoDB's
//! equality is JSON equality and checked with [`tessera_kit::dao::matches`] at the end;
//! `find_all` returns id order. With `mongo_timeout` set, every call is bounded by it.
//!
//! Layout: `config` ([`MongoConfig`]), `convert` (JSON ↔ BSON), `dao`
//! ([`MongoDaoFactory`] and the per-collection DAO), `error` ([`Error`]).

mod config;
mod convert;
mod dao;
mod error;

pub use config::MongoConfig;
pub use dao::MongoDaoFactory;
pub use error::{BoxError, Error, Result};
