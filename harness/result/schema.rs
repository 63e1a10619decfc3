//! The published JSON Schema of `result.json` (`schema/result.schema.json`).
//!
//! Generated from the same Rust types that write the file (schemars, draft 2020-12), so the
//! published schema cannot drift from the output: a test compares the committed file with
//! [`result_schema`] and validates real run outputs against it with an independent validator.
//! `hsbench schema` prints it; regenerate the file with
//! `cargo run --release -- schema > schema/result.schema.json` after changing a result type.
//!
//! Versioning: [`crate::result::SCHEMA_VERSION`] bumps when a change can break a reader
//! (a field removed, renamed or retyped, a required field added). Added optional fields do not
//! bump it; readers must ignore fields they do not know.

use crate::result::{RunResult, SCHEMA_VERSION};

/// The JSON Schema of `result.json` at the current [`SCHEMA_VERSION`].
pub fn result_schema() -> serde_json::Value {
    let mut schema =
        serde_json::to_value(schemars::schema_for!(RunResult)).expect("a schema serializes");
    let obj = schema.as_object_mut().expect("a schema is an object");
    obj.insert(
        "$id".into(),
        format!("https://hsbench.invalid/schema/result-v{SCHEMA_VERSION}.schema.json").into(),
    );
    obj.insert("title".into(), "hsbench result.json".into());
    obj.insert(
        "description".into(),
        format!(
            "One run of an hsbench scenario (schema_version {SCHEMA_VERSION}). Times are in \
             milliseconds unless a field's name or description says otherwise."
        )
        .into(),
    );
    // Pin the version a file of this schema carries.
    if let Some(props) = obj.get_mut("properties").and_then(|p| p.as_object_mut()) {
        props.insert(
            "schema_version".into(),
            serde_json::json!({"type": "integer", "const": SCHEMA_VERSION}),
        );
    }
    schema
}

/// The schema as written to `schema/result.schema.json` (pretty, with a final newline).
pub fn result_schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&result_schema()).expect("a schema serializes");
    s.push('\n');
    s
}
