//! Events built and signed as a homeserver does: content hashes, reference hashes as event IDs
//! (room version 12), the server's ed25519 signature.

use crate::dataset::error::ImportError;
use base64::Engine;
use ruma::room_version_rules::RoomVersionRules;
use ruma::signatures::{Ed25519KeyPair, hash_and_sign_event, reference_hash};
use ruma::{CanonicalJsonObject, CanonicalJsonValue};
use serde_json::json;
use std::path::Path;

/// Room version of every imported room: Synapse 1.163's default.
pub const ROOM_VERSION: &str = "12";

/// `event_json.format_version` of room versions 11+ (`EventFormatVersions.ROOM_V11_HYDRA_PLUS`).
pub(crate) const FORMAT_VERSION: i64 = 4;

pub(crate) const INSTANCE: &str = "master";

/// The server's ed25519 signing key, as Synapse writes it: `ed25519 <version> <base64 seed>`.
pub struct SigningKey {
    pub version: String,
    pub(crate) pair: Ed25519KeyPair,
}

impl SigningKey {
    pub fn read(path: &Path) -> Result<Self, ImportError> {
        let fail = |source: crate::util::BoxError| ImportError::SigningKey {
            path: path.to_path_buf(),
            source,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.into()))?;
        let line = text
            .lines()
            .find(|l| !l.trim().is_empty())
            .ok_or_else(|| fail("empty".into()))?;
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [alg, version, seed] = parts[..] else {
            return Err(fail(
                format!(
                    "expected `ed25519 <version> <seed>`, got {} fields",
                    parts.len()
                )
                .into(),
            ));
        };
        if alg != "ed25519" {
            return Err(fail(format!("algorithm {alg:?}, expected ed25519").into()));
        }
        let seed = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(seed.trim_end_matches('='))
            .map_err(|e| fail(e.into()))?;
        Self::from_seed(version, &seed).map_err(|m| fail(m.into()))
    }

    /// A key from its 32-byte Ed25519 seed.
    pub fn from_seed(version: &str, seed: &[u8]) -> Result<Self, String> {
        if seed.len() != 32 {
            return Err(format!("seed of {} bytes, expected 32", seed.len()));
        }
        // PKCS#8 v1 wrapping of a raw Ed25519 seed (RFC 8410).
        let mut der = hex::decode("302e020100300506032b657004220420").expect("constant");
        der.extend_from_slice(seed);
        let pair =
            Ed25519KeyPair::from_der(&der, version.to_string()).map_err(|e| format!("key: {e}"))?;
        Ok(Self {
            version: version.to_string(),
            pair,
        })
    }
}

/// One event, built, hashed and signed.
#[derive(Debug, Clone)]
pub struct BuiltEvent {
    pub event_id: String,
    pub event_type: String,
    pub state_key: Option<String>,
    pub sender: String,
    pub depth: i64,
    pub ts: i64,
    pub prev: Option<String>,
    pub auth: Vec<String>,
    /// The stored JSON (signed, with `unsigned.age_ts`).
    pub json: String,
    pub content: serde_json::Value,
}

/// Builds the events of one room: hashing, signing and ids, no database.
pub struct EventFactory<'k> {
    pub(crate) server_name: String,
    pub(crate) key: &'k SigningKey,
    pub(crate) rules: RoomVersionRules,
}

impl<'k> EventFactory<'k> {
    pub fn new(server_name: &str, key: &'k SigningKey) -> Self {
        Self {
            server_name: server_name.to_string(),
            key,
            rules: RoomVersionRules::V12,
        }
    }

    /// Hash, sign and id an event. `room_id` is `None` only for the create event (room v12:
    /// the room id is derived from it).
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        &self,
        room_id: Option<&str>,
        event_type: &str,
        state_key: Option<&str>,
        sender: &str,
        content: serde_json::Value,
        depth: i64,
        ts: i64,
        prev: Option<&str>,
        auth: Vec<String>,
    ) -> Result<BuiltEvent, crate::util::BoxError> {
        let mut v = json!({
            "type": event_type,
            "sender": sender,
            "content": content,
            "depth": depth,
            "origin_server_ts": ts,
            "prev_events": prev.map(|p| vec![p.to_string()]).unwrap_or_default(),
            "auth_events": auth,
        });
        if let Some(r) = room_id {
            v["room_id"] = json!(r);
        }
        if let Some(k) = state_key {
            v["state_key"] = json!(k);
        }
        let mut obj: CanonicalJsonObject = match CanonicalJsonValue::try_from(v) {
            Ok(CanonicalJsonValue::Object(o)) => o,
            Ok(_) => return Err("not an object".into()),
            Err(e) => return Err(e.into()),
        };
        hash_and_sign_event(
            &self.server_name,
            &self.key.pair,
            &mut obj,
            &self.rules.redaction,
        )?;
        let hash = reference_hash(&obj, &self.rules)?;
        let mut unsigned = CanonicalJsonObject::new();
        unsigned.insert(
            "age_ts".into(),
            CanonicalJsonValue::Integer(ruma::Int::new_saturating(ts)),
        );
        obj.insert("unsigned".into(), CanonicalJsonValue::Object(unsigned));
        let json = serde_json::to_string(&obj).map_err(|e| e.to_string())?;
        let content = match obj.get("content") {
            Some(c) => serde_json::to_value(c).map_err(|e| e.to_string())?,
            None => serde_json::Value::Null,
        };
        Ok(BuiltEvent {
            event_id: format!("${hash}"),
            event_type: event_type.to_string(),
            state_key: state_key.map(str::to_string),
            sender: sender.to_string(),
            depth,
            ts,
            prev: prev.map(str::to_string),
            auth: auth_sorted(obj.get("auth_events")),
            json,
            content,
        })
    }
}

pub(crate) fn auth_sorted(v: Option<&CanonicalJsonValue>) -> Vec<String> {
    match v {
        Some(CanonicalJsonValue::Array(a)) => a
            .iter()
            .filter_map(|x| match x {
                CanonicalJsonValue::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}
