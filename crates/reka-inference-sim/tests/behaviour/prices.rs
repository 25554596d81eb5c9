//! Prices: every dialect reports `output.usage.price_usd` on completed jobs
//! and `price_usd` in the model list, from the catalog; `prices(false)`
//! plays a service that reports none.

use reka_inference_sim::{Catalog, Dialect, SimConfig};
use serde_json::{Value, json};

use crate::common::Env;

/// `(endpoint_id, price_usd)` of every model list entry of a dialect.
fn listed_prices(dialect: Dialect, body: &Value) -> Vec<(String, Value)> {
    let wrapper = if dialect == Dialect::Infer {
        "models"
    } else {
        "items"
    };
    body[wrapper]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                format!(
                    "{}/{}",
                    m["model_id"].as_str().unwrap(),
                    m["capability"].as_str().unwrap()
                ),
                m.get("price_usd").cloned().unwrap_or(Value::Null),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dialect_prices_completed_jobs_and_lists_prices_from_the_catalog() {
    let catalog = Catalog::default_catalog();
    for dialect in Dialect::ALL {
        let env = Env::new(SimConfig::new().time_scale(0.0).dialect(dialect)).await;
        let listed = listed_prices(dialect, &env.get("/v2/inference/models").await.json);
        for m in &catalog.models {
            let want = m.price().unwrap();
            let (_, price) = listed
                .iter()
                .find(|(id, _)| *id == m.endpoint_id())
                .unwrap();
            assert_eq!(price.as_f64(), Some(want), "{dialect}: {}", m.endpoint_id());
        }
        for chat in &catalog.chat_models {
            let (_, price) = listed
                .iter()
                .find(|(id, _)| *id == format!("{chat}/chat"))
                .unwrap();
            assert!(price.is_null(), "{dialect}: chat {chat} priced {price}");
        }
        let id = env
            .submit("nano-banana/text-to-image", json!({"prompt": "priced"}))
            .await;
        let r = env.result(&id).await;
        assert_eq!(r["status"], "COMPLETED", "{dialect}: {r}");
        assert_eq!(
            r["output"]["usage"]["price_usd"].as_f64(),
            Some(0.039),
            "{dialect}: {r}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_without_prices_reports_none_in_any_dialect() {
    for dialect in Dialect::ALL {
        let env = Env::new(
            SimConfig::new()
                .time_scale(0.0)
                .dialect(dialect)
                .prices(false),
        )
        .await;
        let listed = listed_prices(dialect, &env.get("/v2/inference/models").await.json);
        assert!(!listed.is_empty());
        for (id, price) in listed {
            assert!(price.is_null(), "{dialect}: {id} priced {price}");
        }
        let id = env
            .submit("nano-banana/text-to-image", json!({"prompt": "free"}))
            .await;
        let r = env.result(&id).await;
        assert_eq!(r["status"], "COMPLETED", "{dialect}: {r}");
        assert!(r["output"].is_object(), "{dialect}: {r}");
        assert!(r["output"].get("usage").is_none(), "{dialect}: {r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_states_a_price_leaves_it_to_the_capability_or_states_none() {
    let catalog = Catalog::from_json(
        r#"{"models":[
            {"model_id":"stated","capability":"text-to-image","duration":{"fixed":0},"price_usd":0.125},
            {"model_id":"default","capability":"text-to-image","duration":{"fixed":0}},
            {"model_id":"unpriced","capability":"text-to-image","duration":{"fixed":0},"price_usd":null}
        ]}"#,
    )
    .unwrap();
    let env = Env::new(SimConfig::new().catalog(catalog)).await;
    for (model, want) in [
        ("stated", json!(0.125)),
        ("default", json!(0.04)),
        ("unpriced", Value::Null),
    ] {
        let id = env
            .submit(&format!("{model}/text-to-image"), json!({"prompt": model}))
            .await;
        let r = env.result(&id).await;
        assert_eq!(r["status"], "COMPLETED", "{r}");
        let price = r["output"]
            .pointer("/usage/price_usd")
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(price, want, "{model}: {r}");
    }
}
