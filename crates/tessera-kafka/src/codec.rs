//! Events to Kafka records and back (hexkit's wire format): the JSON payload is the value,
//! the key is the record key, the event type is the `type` header and every other header is
//! a UTF-8 string.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use tessera_kit::events::{self, Event, EventType, HEADER_TYPE, Topic};

/// The record headers of `event`: `type` first, then the event's headers (a stray `type`
/// among them is dropped, since the event type wins).
pub(crate) fn encode_headers(event: &Event) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new_with_capacity(event.headers.len() + 1).insert(Header {
        key: HEADER_TYPE,
        value: Some(event.event_type.as_str()),
    });
    for (key, value) in event.headers.iter().filter(|(k, _)| *k != HEADER_TYPE) {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_str()),
        });
    }
    headers
}

/// The JSON value of `event`.
pub(crate) fn encode_payload(event: &Event) -> events::Result<Vec<u8>> {
    serde_json::to_vec(&event.payload)
        .map_err(|e| events::Error::Malformed(format!("payload cannot be encoded: {e}")))
}

/// Reads the headers; a later header of the same name wins, a header without a value reads
/// as empty.
fn decode_headers<M: Message>(msg: &M) -> Result<BTreeMap<String, String>, String> {
    let Some(raw) = msg.headers() else {
        return Ok(BTreeMap::new());
    };
    // rdkafka unwraps a header *name* that is not UTF-8 (a foreign producer can send one);
    // contain that so the record is skipped instead of stopping the consumer.
    catch_unwind(AssertUnwindSafe(|| {
        let mut headers = BTreeMap::new();
        for header in raw.iter() {
            let value = match header.value {
                None => String::new(),
                Some(bytes) => std::str::from_utf8(bytes)
                    .map_err(|_| format!("header {:?} is not utf-8", header.key))?
                    .to_owned(),
            };
            headers.insert(header.key.to_owned(), value);
        }
        Ok(headers)
    }))
    .unwrap_or_else(|_| Err("a header name is not utf-8".to_owned()))
}

/// The event a consumed record carries, or why it is not a valid event.
pub(crate) fn decode_event<M: Message>(topic: &Topic, msg: &M) -> Result<Event, String> {
    let mut headers = decode_headers(msg)?;
    let event_type = headers
        .remove(HEADER_TYPE)
        .ok_or_else(|| format!("no {HEADER_TYPE:?} header"))?;
    let event_type = EventType::try_from(event_type).map_err(|e| e.to_string())?;
    let key = match msg.key() {
        None => String::new(),
        Some(bytes) => std::str::from_utf8(bytes)
            .map_err(|_| "key is not utf-8".to_owned())?
            .to_owned(),
    };
    let payload = msg.payload().ok_or("record has no value")?;
    let payload = serde_json::from_slice(payload).map_err(|e| format!("value is not json: {e}"))?;
    Ok(Event {
        topic: topic.clone(),
        event_type,
        key,
        payload,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::Timestamp;
    use rdkafka::message::OwnedMessage;
    use serde_json::json;

    fn topic() -> Topic {
        Topic::try_from("t").unwrap()
    }

    fn record(
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: Option<OwnedHeaders>,
    ) -> OwnedMessage {
        OwnedMessage::new(
            payload.map(<[u8]>::to_vec),
            key.map(<[u8]>::to_vec),
            "t".into(),
            Timestamp::NotAvailable,
            0,
            7,
            headers,
        )
    }

    fn headers(pairs: &[(&str, Option<&[u8]>)]) -> OwnedHeaders {
        pairs.iter().fold(OwnedHeaders::new(), |h, (key, value)| {
            h.insert(Header { key, value: *value })
        })
    }

    #[test]
    fn round_trip() {
        let mut event = Event::new(
            topic(),
            EventType::try_from("made").unwrap(),
            "k-ü",
            json!({"n": 1, "s": "grüße", "nested": [null, {"x": 1.5}]}),
            "corr",
        );
        event.headers.insert("custom".into(), "wert ü".into());
        event.headers.insert(HEADER_TYPE.into(), "ignored".into());
        let encoded = encode_headers(&event);
        assert_eq!(
            encoded.count(),
            4,
            "type + correlation_id + custom + event_id"
        );
        assert_eq!(encoded.get(0).key, HEADER_TYPE);
        let payload = encode_payload(&event).unwrap();
        let msg = record(Some(event.key.as_bytes()), Some(&payload), Some(encoded));
        let decoded = decode_event(&topic(), &msg).unwrap();
        event.headers.remove(HEADER_TYPE);
        assert_eq!(decoded, event);
    }

    #[test]
    fn broken_records_give_reasons() {
        let good = || headers(&[("type", Some(b"made")), ("correlation_id", Some(b"c"))]);
        let json = br#"{"a": 1}"#.as_slice();
        let cases: Vec<(OwnedMessage, &str)> = vec![
            (record(None, Some(json), None), "no \"type\" header"),
            (
                record(None, Some(json), Some(headers(&[("other", Some(b"x"))]))),
                "no \"type\" header",
            ),
            (
                record(
                    None,
                    Some(json),
                    Some(headers(&[("type", Some(b"bad type"))])),
                ),
                "invalid event type",
            ),
            (
                record(None, Some(json), Some(headers(&[("type", None)]))),
                "invalid event type",
            ),
            (
                record(
                    None,
                    Some(json),
                    Some(headers(&[
                        ("type", Some(b"made")),
                        ("x", Some(b"\xff\xfe")),
                    ])),
                ),
                "header \"x\" is not utf-8",
            ),
            (
                record(Some(b"\xc3"), Some(json), Some(good())),
                "key is not utf-8",
            ),
            (record(None, None, Some(good())), "record has no value"),
            (
                record(None, Some(b"{not json"), Some(good())),
                "value is not json",
            ),
        ];
        for (msg, want) in cases {
            let err = decode_event(&topic(), &msg).unwrap_err();
            assert!(err.contains(want), "{err:?} should mention {want:?}");
        }
    }

    #[test]
    fn missing_key_and_empty_header_values_read_as_empty() {
        let msg = record(
            None,
            Some(b"[1]"),
            Some(headers(&[
                ("type", Some(b"old")),
                ("type", Some(b"made")),
                ("empty", None),
            ])),
        );
        let event = decode_event(&topic(), &msg).unwrap();
        assert_eq!(event.event_type.as_str(), "made", "the last header wins");
        assert_eq!(event.key, "");
        assert_eq!(event.headers["empty"], "");
        assert_eq!(event.payload, json!([1]));
        assert!(!event.headers.contains_key("type"));
    }
}
