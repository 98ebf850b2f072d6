//! The package loader: reads `datapackage.json` from the object store, checks it
//! ([`PackageDescriptor`]), streams **every** CSV resource through a [`CsvChecker`] (each
//! row against its schema, memory bounded by the longest row plus 16 bytes per row of a
//! `unique` or `primaryKey` field), then writes the package under `<dir>/final/`.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Map, Value, json};
use tessera_kit::objects::{self, ObjectKey, ObjectStore, PutRequest};

use crate::tableschema::{Dialect, PackageDescriptor, Resource};

/// The largest `datapackage.json` read.
pub const MAX_DESCRIPTOR_BYTES: u64 = 4 * 1024 * 1024;
/// The longest CSV row.
pub const MAX_ROW_BYTES: usize = 1024 * 1024;

/// Why a load failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The package is invalid; the message names the resource, row and field.
    #[error("{0}")]
    Invalid(String),
    /// The object store failed.
    #[error("object storage: {0}")]
    Storage(#[from] objects::Error),
}

/// A CSV stream checker for one resource: feed it chunks, then [`CsvChecker::finish`].
#[derive(Debug)]
pub struct CsvChecker {
    resource: Resource,
    reader: csv_core::Reader,
    out: Vec<u8>,
    out_len: usize,
    ends: Vec<usize>,
    ends_len: usize,
    /// Records seen, the header included (frictionless' row numbers).
    records: u64,
    rows: u64,
    started: bool,
    /// The first bytes, held until a UTF-8 byte-order mark can be told apart.
    head: Vec<u8>,
    unique: Vec<(usize, HashSet<u128>)>,
    keys: HashSet<u128>,
    hasher: std::collections::hash_map::RandomState,
}

fn reader_for(dialect: &Dialect) -> csv_core::Reader {
    csv_core::ReaderBuilder::new()
        .delimiter(dialect.delimiter)
        .quote(dialect.quote)
        .double_quote(dialect.double_quote)
        .build()
}

impl CsvChecker {
    /// A checker for `resource`.
    pub fn new(resource: Resource) -> Self {
        let unique = resource
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.constraints.unique)
            .map(|(i, _)| (i, HashSet::new()))
            .collect();
        Self {
            reader: reader_for(&resource.dialect),
            resource,
            out: vec![0; 64 * 1024],
            out_len: 0,
            ends: vec![0; 256],
            ends_len: 0,
            records: 0,
            rows: 0,
            started: false,
            head: Vec::new(),
            unique,
            keys: HashSet::new(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Data rows checked so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn fail(&self, message: impl std::fmt::Display) -> LoadError {
        LoadError::Invalid(format!("resource {:?}: {message}", self.resource.name))
    }

    fn fail_at(&self, field: Option<&str>, message: impl std::fmt::Display) -> LoadError {
        match field {
            Some(field) => self.fail(format!("row {} field {field:?}: {message}", self.records)),
            None => self.fail(format!("row {}: {message}", self.records)),
        }
    }

    /// Checks the next bytes of the file.
    pub fn feed(&mut self, input: &[u8]) -> Result<(), LoadError> {
        if self.started {
            return self.parse(input, false);
        }
        self.head.extend_from_slice(input);
        if self.head.len() < 3 {
            return Ok(());
        }
        self.start()
    }

    fn start(&mut self) -> Result<(), LoadError> {
        self.started = true;
        let head = std::mem::take(&mut self.head);
        let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
        self.parse(body, false)
    }

    /// Checks the end of the file; the number of data rows.
    pub fn finish(mut self) -> Result<u64, LoadError> {
        if !self.started {
            self.start()?;
        }
        self.parse(&[], true)?;
        if self.records == 0 && self.resource.dialect.header {
            return Err(self.fail("the file is empty (no header row)"));
        }
        Ok(self.rows)
    }

    fn parse(&mut self, mut input: &[u8], end: bool) -> Result<(), LoadError> {
        use csv_core::ReadRecordResult as R;
        loop {
            let (result, read, written, ended) = self.reader.read_record(
                input,
                &mut self.out[self.out_len..],
                &mut self.ends[self.ends_len..],
            );
            input = &input[read..];
            self.out_len += written;
            self.ends_len += ended;
            match result {
                R::InputEmpty => {
                    if !end {
                        return Ok(());
                    }
                }
                R::OutputFull => {
                    if self.out.len() >= MAX_ROW_BYTES {
                        self.records += 1;
                        return Err(
                            self.fail_at(None, format!("longer than {MAX_ROW_BYTES} bytes"))
                        );
                    }
                    let len = self.out.len() * 2;
                    self.out.resize(len, 0);
                }
                R::OutputEndsFull => {
                    let len = self.ends.len() * 2;
                    self.ends.resize(len, 0);
                }
                R::Record => {
                    self.records += 1;
                    self.record()?;
                    self.out_len = 0;
                    self.ends_len = 0;
                }
                R::End => return Ok(()),
            }
        }
    }

    fn record(&mut self) -> Result<(), LoadError> {
        let out = &self.out[..self.out_len];
        let ends = &self.ends[..self.ends_len];
        let cell = |i: usize| -> &[u8] {
            let start = if i == 0 { 0 } else { ends[i - 1] };
            &out[start..ends[i]]
        };
        let count = ends.len();
        let mut cells: Vec<&str> = Vec::with_capacity(count);
        for i in 0..count {
            match std::str::from_utf8(cell(i)) {
                Ok(s) => cells.push(s),
                Err(_) => {
                    return Err(
                        self.fail_at(None, "the bytes are not valid UTF-8 (encoding error)")
                    );
                }
            }
        }
        let fields = &self.resource.fields;
        if self.records == 1 && self.resource.dialect.header {
            for (i, field) in fields.iter().enumerate() {
                match cells.get(i) {
                    None => {
                        return Err(self.fail(format!(
                            "the header has no label for field {:?}",
                            field.name
                        )));
                    }
                    Some(label) if *label != field.name => {
                        return Err(self.fail(format!(
                            "header label {label:?} in column {} is not the field name {:?}",
                            i + 1,
                            field.name
                        )));
                    }
                    Some(_) => {}
                }
            }
            if cells.len() > fields.len() {
                return Err(self.fail(format!(
                    "the header has a label {:?} for no field",
                    cells[fields.len()]
                )));
            }
            return Ok(());
        }
        if cells.iter().all(|c| c.is_empty()) {
            return Err(self.fail_at(None, "the row is blank"));
        }
        if cells.len() > fields.len() {
            return Err(self.fail_at(
                None,
                format!(
                    "{} cells for {} fields (extra cell)",
                    cells.len(),
                    fields.len()
                ),
            ));
        }
        if cells.len() < fields.len() {
            return Err(self.fail_at(
                Some(&fields[cells.len()].name),
                format!(
                    "{} cells for {} fields (missing cell)",
                    cells.len(),
                    fields.len()
                ),
            ));
        }
        let missing = &self.resource.missing_values;
        for (field, value) in fields.iter().zip(&cells) {
            if missing.iter().any(|m| m == value) {
                if field.constraints.required {
                    return Err(self.fail_at(Some(&field.name), "a value is required"));
                }
                continue;
            }
            if let Err(message) = field.check(value) {
                return Err(self.fail_at(Some(&field.name), message));
            }
        }
        for u in 0..self.unique.len() {
            let i = self.unique[u].0;
            if missing.iter().any(|m| m == cells[i]) {
                continue;
            }
            let hash = self.hash(&[cells[i]]);
            if !self.unique[u].1.insert(hash) {
                return Err(self.fail_at(
                    Some(&fields[i].name),
                    format!("{:?} is not unique", cells[i]),
                ));
            }
        }
        if !self.resource.primary_key.is_empty() {
            let key: Vec<&str> = self
                .resource
                .primary_key
                .iter()
                .map(|i| cells[*i])
                .collect();
            if self
                .resource
                .primary_key
                .iter()
                .any(|i| missing.iter().any(|m| m == cells[*i]))
            {
                return Err(self.fail_at(None, "a primary key value is missing"));
            }
            let hash = self.hash(&key);
            if !self.keys.insert(hash) {
                return Err(self.fail_at(None, format!("primary key {key:?} is not unique")));
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// A 128-bit hash of the values (two seeded 64-bit hashes, so a false clash among a
    /// billion rows is negligible).
    fn hash(&self, values: &[&str]) -> u128 {
        let mut a = self.hasher.build_hasher();
        let mut b = self.hasher.build_hasher();
        b.write_u8(0xA5);
        for v in values {
            a.write(v.as_bytes());
            a.write_u8(0xFF);
            b.write(v.as_bytes());
            b.write_u8(0xFF);
        }
        (u128::from(a.finish()) << 64) | u128::from(b.finish())
    }
}

/// What a successful load found.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The descriptor.
    pub descriptor: PackageDescriptor,
    /// Data rows per resource, in order.
    pub rows: Vec<u64>,
    /// The final descriptor written under `final/`.
    pub final_descriptor: Map<String, Value>,
}

impl Loaded {
    /// All data rows.
    pub fn count_of_rows(&self) -> u64 {
        self.rows.iter().sum()
    }
}

/// Loads packages from one object store.
#[derive(Debug, Clone)]
pub struct Loader {
    store: Arc<dyn ObjectStore>,
}

impl Loader {
    /// A loader on `store`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// The bytes of `key`; a missing object is an invalid package.
    async fn body(&self, key: &ObjectKey) -> Result<objects::ByteStream, LoadError> {
        Ok(self
            .store
            .get(key, None)
            .await
            .map_err(|e| missing(key, e))?
            .body)
    }

    async fn read_small(&self, key: &ObjectKey) -> Result<Bytes, LoadError> {
        let meta = self.store.head(key).await.map_err(|e| missing(key, e))?;
        if meta.size > MAX_DESCRIPTOR_BYTES {
            return Err(LoadError::Invalid(format!(
                "{key} is larger than {MAX_DESCRIPTOR_BYTES} bytes"
            )));
        }
        let mut body = self.body(key).await?;
        let mut out = Vec::with_capacity(usize::try_from(meta.size).unwrap_or(0));
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk?);
            if out.len() as u64 > MAX_DESCRIPTOR_BYTES {
                return Err(LoadError::Invalid(format!("{key} is too large")));
            }
        }
        Ok(Bytes::from(out))
    }

    /// Checks the package whose descriptor is `descriptor_key` (`<dir>/datapackage.json`),
    /// reporting the fraction of CSV bytes read to `progress`, and on success writes
    /// `<dir>/final/datapackage.json` and `<dir>/final/data/<resource>.csv`.
    pub async fn load(
        &self,
        descriptor_key: &ObjectKey,
        progress: &mut (dyn FnMut(f64) + Send),
    ) -> Result<Loaded, LoadError> {
        let dir = descriptor_key
            .as_str()
            .rsplit_once('/')
            .map(|(d, _)| d.to_owned())
            .ok_or_else(|| {
                LoadError::Invalid("the descriptor is not inside a package directory".into())
            })?;
        let bytes = self.read_small(descriptor_key).await?;
        let descriptor = PackageDescriptor::parse(&bytes).map_err(|e| LoadError::Invalid(e.0))?;
        let mut keys = Vec::with_capacity(descriptor.resources.len());
        let mut total = 0u64;
        for resource in &descriptor.resources {
            let key = ObjectKey::parse(format!("{dir}/{}", resource.path))
                .map_err(|e| LoadError::Invalid(format!("resource {:?}: {e}", resource.name)))?;
            let meta = self.store.head(&key).await.map_err(|e| match e {
                objects::Error::NotFound { .. } => LoadError::Invalid(format!(
                    "resource {:?}: the file {} is missing",
                    resource.name, resource.path
                )),
                other => other.into(),
            })?;
            total += meta.size;
            keys.push(key);
        }
        let mut done = 0u64;
        let mut rows = Vec::with_capacity(keys.len());
        progress(0.0);
        for (resource, key) in descriptor.resources.iter().zip(&keys) {
            let mut checker = CsvChecker::new(resource.clone());
            let mut body = self.body(key).await?;
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                checker.feed(&chunk)?;
                done += chunk.len() as u64;
                if total > 0 {
                    progress((done as f64 / total as f64).min(1.0));
                }
            }
            rows.push(checker.finish()?);
        }
        let mut final_resources = Vec::with_capacity(keys.len());
        let raw_resources = descriptor.raw.get("resources").and_then(Value::as_array);
        for (i, (resource, key)) in descriptor.resources.iter().zip(&keys).enumerate() {
            let path = format!("data/{}.csv", resource.name);
            let to = ObjectKey::parse(format!("{dir}/final/{path}"))
                .map_err(|e| LoadError::Invalid(e.to_string()))?;
            self.store.copy(key, &to).await?;
            let mut raw = raw_resources
                .and_then(|r| r.get(i))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            raw.insert("path".into(), json!(path));
            raw.insert("count_of_rows".into(), json!(rows[i]));
            final_resources.push(Value::Object(raw));
        }
        let mut final_descriptor = descriptor.raw.clone();
        final_descriptor.insert("resources".into(), Value::Array(final_resources));
        final_descriptor.insert("count_of_rows".into(), json!(rows.iter().sum::<u64>()));
        let text = serde_json::to_vec_pretty(&final_descriptor)
            .map_err(|e| LoadError::Invalid(e.to_string()))?;
        let key = ObjectKey::parse(format!("{dir}/final/datapackage.json"))
            .map_err(|e| LoadError::Invalid(e.to_string()))?;
        let length = text.len() as u64;
        let body = futures::stream::once(async move { Ok(Bytes::from(text)) }).boxed();
        self.store
            .put(
                &key,
                body,
                PutRequest::new(length).content_type("application/json"),
            )
            .await?;
        progress(1.0);
        Ok(Loaded {
            descriptor,
            rows,
            final_descriptor,
        })
    }
}

fn missing(key: &ObjectKey, e: objects::Error) -> LoadError {
    match e {
        objects::Error::NotFound { .. } => LoadError::Invalid(format!("{key} is missing")),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(schema: Value) -> Resource {
        let d =
            json!({"name": "p", "resources": [{"name": "r", "path": "r.csv", "schema": schema}]});
        PackageDescriptor::parse(d.to_string().as_bytes())
            .unwrap()
            .resources
            .remove(0)
    }

    fn check(schema: Value, csv: &[u8], chunk: usize) -> Result<u64, LoadError> {
        let mut c = CsvChecker::new(resource(schema));
        for part in csv.chunks(chunk.max(1)) {
            c.feed(part)?;
        }
        c.finish()
    }

    fn fields() -> Value {
        json!({"fields": [{"name": "id", "type": "integer", "constraints": {"unique": true}},
                          {"name": "amount", "type": "number", "constraints": {"required": true}}]})
    }

    #[test]
    fn rows_are_counted_whatever_the_chunks() {
        let csv = b"\xEF\xBB\xBFid,amount\r\n1,2.5\n2,\"3\"\n3,1e3";
        for chunk in [1, 2, 3, 7, 100] {
            assert_eq!(check(fields(), csv, chunk).unwrap(), 3, "chunk {chunk}");
        }
    }

    #[test]
    fn errors_name_the_resource_row_and_field() {
        let cases: [(&[u8], &str); 8] = [
            (
                b"id,amount\n1,x\n",
                "resource \"r\": row 2 field \"amount\": \"x\" is not a number",
            ),
            (
                b"id,amount\n1,2\n1,3\n",
                "row 3 field \"id\": \"1\" is not unique",
            ),
            (
                b"id,amount\n1,\n",
                "row 2 field \"amount\": a value is required",
            ),
            (b"id,amount\n1,2,3\n", "extra cell"),
            (
                b"id,amount\n1\n",
                "row 2 field \"amount\": 1 cells for 2 fields (missing cell)",
            ),
            (b"id,amt\n1,2\n", "header label \"amt\""),
            (b"id,amount\n1,\xFF\n", "encoding"),
            (b"", "empty"),
        ];
        for (csv, says) in cases {
            let e = check(fields(), csv, 4).unwrap_err().to_string();
            assert!(e.contains(says), "{e:?} should contain {says:?}");
        }
    }

    #[test]
    fn primary_keys_and_dialects() {
        let schema = json!({"fields": [{"name": "a"}, {"name": "b"}], "primaryKey": ["a", "b"]});
        assert!(check(schema.clone(), b"a,b\nx,y\nx,z\n", 3).is_ok());
        assert!(
            check(schema, b"a,b\nx,y\nx,y\n", 3)
                .unwrap_err()
                .to_string()
                .contains("primary key")
        );
        let d = json!({"name": "p", "resources": [{"name": "r", "path": "r.csv",
            "dialect": {"delimiter": ";"}, "schema": {"fields": [{"name": "a"}, {"name": "b"}]}}]});
        let r = PackageDescriptor::parse(d.to_string().as_bytes())
            .unwrap()
            .resources
            .remove(0);
        let mut c = CsvChecker::new(r);
        c.feed(b"a;b\n\"x;1\";2\n").unwrap();
        assert_eq!(c.finish().unwrap(), 1);
    }

    #[test]
    fn rows_longer_than_the_limit_are_refused() {
        let mut csv = b"id,amount\n1,".to_vec();
        csv.extend(std::iter::repeat_n(b'9', MAX_ROW_BYTES + 10));
        let e = check(fields(), &csv, 64 * 1024).unwrap_err().to_string();
        assert!(e.contains("longer than"), "{e}");
    }
}
