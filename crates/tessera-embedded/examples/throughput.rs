//! Rough throughput of the embedded store on this machine (not a benchmark suite):
//! `cargo run --release -p tessera-embedded --example throughput [-- <documents>]`.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tessera_embedded::{Durability, EmbeddedOptions, EmbeddedStore};
use tessera_kit::dao::{CollectionSpec, DaoFactory};
use tessera_kit::events::{ConsumerIdentity, Event, EventBus, EventPublisher, EventType, Topic};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(5_000), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    for durability in [Durability::Full, Durability::Process] {
        let options = EmbeddedOptions {
            durability,
            ..EmbeddedOptions::default()
        };
        let store =
            EmbeddedStore::open_with(dir.path().join(format!("{durability:?}.sqlite")), options)?;
        let dao = store
            .document_dao(CollectionSpec::new("items", "id").unique("email"))
            .await?;

        let start = Instant::now();
        for i in 0..n {
            let doc = json!({"id": format!("item-{i}"), "email": format!("{i}@x"), "n": i, "text": "some text"});
            dao.insert(doc.as_object().cloned().unwrap_or_default())
                .await?;
        }
        report(&format!("{durability:?}: sequential inserts"), n, start);

        let tasks = 64;
        let reads_each = 4 * n / tasks;
        let start = Instant::now();
        let mut handles = Vec::new();
        for t in 0..tasks {
            let dao = Arc::clone(&dao);
            handles.push(tokio::spawn(async move {
                for i in 0..reads_each {
                    let id = format!("item-{}", (i * 7919 + t) % n);
                    dao.get_by_id(&id).await?;
                }
                Ok::<_, tessera_kit::dao::Error>(())
            }));
        }
        for h in handles {
            h.await??;
        }
        report(
            &format!("{durability:?}: get_by_id from {tasks} tasks"),
            tasks * reads_each,
            start,
        );

        let topic = Topic::try_from("bench")?;
        let start = Instant::now();
        for i in 0..n {
            let e = Event::new(
                topic.clone(),
                EventType::try_from("made")?,
                "k",
                json!({"i": i}),
                "c",
            );
            store.publish(e).await?;
        }
        report(&format!("{durability:?}: sequential publishes"), n, start);

        let identity = ConsumerIdentity {
            service_name: "bench".into(),
            instance_id: "1".into(),
        };
        let mut src = store.subscribe(&identity, &[topic]).await?;
        let start = Instant::now();
        for _ in 0..n {
            let d = src.next().await?;
            src.commit(&d).await?;
        }
        report(&format!("{durability:?}: next + commit"), n, start);
        src.close().await?;
    }
    Ok(())
}

fn report(what: &str, n: usize, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    println!("{what}: {n} in {secs:.2} s = {:.0}/s", n as f64 / secs);
}
