//! Offline validation never rejects a valid upstream field: objects written with every field
//! the upstream API types define (testdata/upstream/*.yaml) pass the catalogue's schemas, and
//! a misspelled field in any of them is caught.

use flotilla_lang::AttrPath;
use flotilla_provider::Value;
use serde::Deserialize;
use serde_json::Value as Json;

fn samples(file: &str) -> Vec<Json> {
    let path = format!(
        "{}/../../testdata/upstream/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Json::deserialize(d).unwrap())
        .collect()
}

fn errors(obj: &Json) -> Vec<String> {
    let api_version = obj["apiVersion"].as_str().unwrap();
    let kind = obj["kind"].as_str().unwrap();
    let schema = flotilla_ecosystems::spec_schema(api_version, kind)
        .unwrap_or_else(|| panic!("no schema for {api_version} {kind}"));
    let mut out = Vec::new();
    flotilla_provider_kube::validate::check(
        &Value::from_json(&obj["spec"]),
        schema,
        &mut AttrPath::attr("spec"),
        &mut out,
    );
    out.into_iter().map(|e| e.message).collect()
}

#[test]
fn every_upstream_field_is_accepted() {
    let mut kinds = 0;
    for file in ["capi.yaml", "karmada.yaml", "volcano.yaml"] {
        for obj in samples(file) {
            let e = errors(&obj);
            assert!(e.is_empty(), "{file} {}: {e:?}", obj["kind"]);
            kinds += 1;
        }
    }
    assert_eq!(kinds, 17);
}

#[test]
fn a_misspelled_field_in_any_sample_is_caught() {
    for file in ["capi.yaml", "karmada.yaml", "volcano.yaml"] {
        for mut obj in samples(file) {
            let spec = obj["spec"].as_object_mut().unwrap();
            let (first, v) = spec
                .iter()
                .next()
                .map(|(k, v)| (k.clone(), v.clone()))
                .unwrap();
            spec.remove(&first);
            spec.insert(format!("{first}x"), v);
            let e = errors(&obj);
            assert!(
                e.iter()
                    .any(|m| m.contains(&format!("unknown field `{first}x`"))),
                "{file} {}: {e:?}",
                obj["kind"]
            );
        }
    }
}
