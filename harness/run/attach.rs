//! Running against a server hsbench did not start (`--attach`): its accounts and checks.

use super::ctx::finish_files;
use super::ctx::{Ctx, Mode};
use super::error::RunError;
use super::workloads::workloads;
use crate::dataset::plan::DatasetPlan;
use crate::dataset::seed::Credentials;
use crate::result::{DatasetInfo, ServerInfo};
use crate::scenario::{LoadMethod, Registration, Scenario};
use crate::server::ServerProfile;
use std::time::Duration;

/// `--attach`: the workloads of this shard against a running server.
pub(super) async fn attached(ctx: &mut Ctx<'_>) -> Result<(), RunError> {
    let Mode::Attach(a) = &ctx.mode else {
        unreachable!("attached() runs in attach mode")
    };
    let (url, shard, release_at) = (a.base_url.clone(), a.shard, a.release_at);
    let all_users = a.credentials.tokens.len();
    let creds = Credentials {
        user_ids: shard.slice(&a.credentials.user_ids),
        tokens: shard.slice(&a.credentials.tokens),
        room_ids: a.credentials.room_ids.clone(),
    };
    let scenario = ctx.scenario;
    let plan = DatasetPlan::new(scenario.dataset.clone());
    // Synapse answers its version without authentication; another server may not.
    let version = async {
        let body: serde_json::Value = reqwest::Client::new()
            .get(format!("{url}/_synapse/admin/v1/server_version"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        body.get("server_version")?.as_str().map(str::to_string)
    }
    .await;
    ctx.result.server = Some(ServerInfo {
        kind: if version.is_some() {
            "synapse (attached)".into()
        } else {
            "attached server".into()
        },
        version: version.unwrap_or_else(|| "unknown".into()),
        database: "not known".into(),
        database_detail: Some(format!("a running server at {url}")),
        install_dir: String::new(),
        installed_now: false,
        install_seconds: 0.0,
        config_overrides: serde_json::Value::Null,
        source: None,
    });
    ctx.result.dataset = Some(DatasetInfo::planned(&plan));
    ctx.result.shard = Some(crate::result::ShardInfo {
        index: shard.index,
        count: shard.count,
        attached_to: url.clone(),
        clients: creds.tokens.len() as u64,
        release_at: release_at.map(|t| {
            chrono::DateTime::<chrono::Utc>::from(t)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        }),
    });
    ctx.save()?;
    ctx.say(&format!(
        "attached to {url}: shard {shard}, {} of {} users",
        creds.tokens.len(),
        all_users
    ));
    workloads(ctx, &url, &plan, &creds, None, &[]).await?;
    ctx.save()?;
    finish_files(ctx)
}

/// How a native server's dataset users get accounts, when it is not every user with a password:
/// with the profile's application service, only the users the plan puts online have one.
pub(super) fn native_accounts(profile: &ServerProfile, scenario: &Scenario) -> Option<String> {
    let launch = profile.launch.as_ref()?;
    (!launch.appservice.is_empty()
        && scenario.dataset.registration == Registration::Appservice
        && scenario.dataset.load == LoadMethod::Api)
        .then(|| "passwords: online users; others: application service".to_string())
}
