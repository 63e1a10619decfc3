//! The published schema (schema/result.schema.json) is the one the code generates: a change to
//! a result type without regenerating the file fails here, with the command that fixes it.
//! Real outputs are validated against it in tests/synapse_run.rs.

#[test]
fn published_schema_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/result.schema.json");
    let published = std::fs::read_to_string(&path).unwrap();
    let generated = hsbench::result::schema::result_schema_text();
    assert!(
        published == generated,
        "{} is stale: run `cargo run --release -- schema > schema/result.schema.json` (and bump \
         SCHEMA_VERSION if the change breaks readers)",
        path.display()
    );
    let v: serde_json::Value = serde_json::from_str(&published).unwrap();
    assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(
        v["properties"]["schema_version"]["const"],
        hsbench::result::SCHEMA_VERSION
    );
    for field in ["run_id", "status", "boots", "machine", "harness"] {
        assert!(
            v["required"].as_array().unwrap().iter().any(|f| f == field),
            "{field} should be required"
        );
    }
}
