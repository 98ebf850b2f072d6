//! DataONE inputs (`type: dataone`, `dataset_identifier`, optional `filename`), resolved to
//! object URLs on the member node `DATAONE_NODE_URL` when the recipe is loaded, as the
//! original does, so the engines fetch plain URLs.
//!
//! A dataset is its resource map: `GET {node}/v2/object/{dataset_identifier}` answers the
//! OAI-ORE RDF/XML document whose `ore:aggregates` name the dataset's objects (as
//! `…/resolve/{pid}` URIs). Each object's system metadata (`GET {node}/v2/meta/{pid}`) gives
//! its `fileName`; with `filename`, only the objects of that name are inputs. An input is
//! `{node}/v2/object/{pid}`, which the node serves with a `Content-Disposition` naming the
//! file. Every request goes through the [`Fetcher`] (its address checks, size and time
//! limits).

use quick_xml::events::Event;
use reqwest::Url;
use tessera_recipes::recipe::{self, DataoneInput};

use crate::fetch::{FetchError, Fetcher};

/// The most of a resource map or a system metadata document that is read.
const DOCUMENT_MAX: u64 = 8 * 1024 * 1024;
/// The most objects one dataset input may bring.
const OBJECTS_MAX: usize = 10_000;

/// A DataONE member node.
#[derive(Debug, Clone)]
pub struct DataoneNode {
    base: String,
    fetcher: Fetcher,
}

fn invalid(message: String) -> recipe::Error {
    recipe::Error::Invalid(message)
}

/// The `ore:aggregates` resources of a resource map.
fn aggregated(map: &str) -> Result<Vec<String>, String> {
    let mut reader = quick_xml::Reader::from_str(map);
    let mut out = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) if e.local_name().as_ref() == b"aggregates" => {
                for attr in e.attributes() {
                    let attr = attr.map_err(|e| e.to_string())?;
                    if attr.key.local_name().as_ref() == b"resource" {
                        let value = attr
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .map_err(|e| e.to_string())?;
                        out.push(value.into_owned());
                    }
                }
            }
            Ok(Event::Eof) => return Ok(out),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The text of the first `fileName` element of a system metadata document.
fn file_name(meta: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(meta);
    let mut text: Option<String> = None;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) if text.is_none() && e.local_name().as_ref() == b"fileName" => {
                text = Some(String::new());
            }
            Event::Text(t) if text.is_some() => text.as_mut()?.push_str(&t.decode().ok()?),
            // Entity references come as events of their own.
            Event::GeneralRef(r) if text.is_some() => {
                let resolved = match r.resolve_char_ref().ok()? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().ok()?;
                        quick_xml::escape::resolve_predefined_entity(&name)?.to_owned()
                    }
                };
                text.as_mut()?.push_str(&resolved);
            }
            Event::End(_) if text.is_some() => return text.map(|t| t.trim().to_owned()),
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// The identifier an aggregated resource names, still percent-encoded as it appears in
/// the URI (its last path segment), or `None` for anything else.
fn pid_segment(resource: &str) -> Option<String> {
    let url = Url::parse(resource).ok()?;
    let segment = url.path_segments()?.next_back()?.to_owned();
    (!segment.is_empty()).then_some(segment)
}

impl DataoneNode {
    /// The node at `base` (e.g. `https://arcticdata.io/metacat/d1/mn`).
    pub fn new(base: &str, fetcher: Fetcher) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            fetcher,
        }
    }

    /// `{base}/v2/{api}/{segment}`, the segment kept as encoded.
    fn url(&self, api: &str, segment: &str) -> String {
        format!("{}/v2/{api}/{segment}", self.base)
    }

    async fn document(&self, url: &str, what: &str) -> Result<Option<String>, recipe::Error> {
        match self.fetcher.text(url, DOCUMENT_MAX).await {
            Ok(text) => Ok(Some(text)),
            Err(FetchError::NotFound(_)) => Ok(None),
            Err(FetchError::NotAllowed(m)) => Err(recipe::Error::PathNotAllowed(m)),
            Err(FetchError::Failed(m)) => Err(recipe::Error::Unreadable(format!("{what}: {m}"))),
        }
    }

    /// The object URLs `input` stands for.
    pub async fn resolve(&self, input: &DataoneInput) -> Result<Vec<String>, recipe::Error> {
        let id = input.dataset_identifier.trim();
        let mut map_url = Url::parse(&format!("{}/v2/object/", self.base))
            .map_err(|e| invalid(format!("DATAONE_NODE_URL: {e}")))?;
        map_url
            .path_segments_mut()
            .map_err(|()| invalid("DATAONE_NODE_URL cannot take a path".into()))?
            .pop_if_empty()
            .push(id);
        let map = self
            .document(map_url.as_str(), "the dataset's resource map")
            .await?
            .ok_or_else(|| invalid(format!("DataONE dataset {id} not found at {}", self.base)))?;
        let resources = aggregated(&map)
            .map_err(|e| invalid(format!("DataONE dataset {id}: not a resource map ({e})")))?;
        let mut seen = std::collections::HashSet::new();
        let pids: Vec<String> = resources
            .iter()
            .filter_map(|r| pid_segment(r))
            .filter(|p| seen.insert(p.clone()))
            .collect();
        if pids.is_empty() {
            return Err(invalid(format!("DataONE dataset {id} holds no objects")));
        }
        if pids.len() > OBJECTS_MAX {
            return Err(invalid(format!(
                "DataONE dataset {id} holds more than {OBJECTS_MAX} objects"
            )));
        }
        let Some(wanted) = input.filename.as_deref() else {
            return Ok(pids.iter().map(|p| self.url("object", p)).collect());
        };
        let mut urls = Vec::new();
        for pid in &pids {
            let meta = self
                .document(&self.url("meta", pid), "an object's system metadata")
                .await?;
            if meta.as_deref().and_then(file_name).as_deref() == Some(wanted) {
                urls.push(self.url("object", pid));
            }
        }
        if urls.is_empty() {
            return Err(invalid(format!(
                "DataONE dataset {id} has no file named {wanted}"
            )));
        }
        Ok(urls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns:ore="http://www.openarchives.org/ore/terms/">
  <rdf:Description rdf:about="https://cn.dataone.org/cn/v2/resolve/resource_map_urn%3Auuid%3A1">
    <ore:describes rdf:resource="https://cn.dataone.org/cn/v2/resolve/resource_map_urn%3Auuid%3A1#aggregation"/>
  </rdf:Description>
  <rdf:Description rdf:about="https://cn.dataone.org/cn/v2/resolve/resource_map_urn%3Auuid%3A1#aggregation">
    <ore:aggregates rdf:resource="https://cn.dataone.org/cn/v2/resolve/urn%3Auuid%3Aa"/>
    <ore:aggregates rdf:resource="https://cn.dataone.org/cn/v2/resolve/urn%3Auuid%3Ab&amp;c"/>
  </rdf:Description>
</rdf:RDF>"#;

    #[test]
    fn a_resource_map_lists_its_aggregated_objects() {
        let resources = aggregated(MAP).unwrap();
        assert_eq!(
            resources,
            [
                "https://cn.dataone.org/cn/v2/resolve/urn%3Auuid%3Aa",
                "https://cn.dataone.org/cn/v2/resolve/urn%3Auuid%3Ab&c"
            ]
        );
        assert_eq!(pid_segment(&resources[0]).unwrap(), "urn%3Auuid%3Aa");
        assert!(aggregated("<a><b></a>").is_err());
    }

    #[test]
    fn system_metadata_names_the_file() {
        let meta = "<d1:systemMetadata xmlns:d1=\"http://ns.dataone.org/service/types/v2.0\">\
                    <identifier>urn:uuid:a</identifier><fileName> seals &amp; tags.csv </fileName>\
                    </d1:systemMetadata>";
        assert_eq!(file_name(meta).as_deref(), Some("seals & tags.csv"));
        assert_eq!(file_name("<systemMetadata/>"), None);
    }
}
