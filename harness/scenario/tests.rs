//! The scenario parser's tests: good files, defaults, and every error located.

use std::time::Duration;

use super::server::normalize;
use super::*;

const GOOD: &str = r#"
name = "t"
[dataset]
seed = 7
users = 10
rooms = 2
big_room_members = 5
messages_per_room = 3

[server]
version = "1.163.2"

[boot]
repeats = 2
timeout = "90s"

[workload.herd]
clients = 4
sync = "full_state"
"#;

fn err(text: &str) -> ScenarioError {
    parse(Path::new("s.toml"), text).expect_err("must fail")
}

#[test]
fn boot_meter_parses_and_a_bad_value_names_its_field_and_line() {
    let s = parse(Path::new("s.toml"), GOOD).unwrap();
    assert_eq!(s.boot.meter, MeterMode::Time, "time unless asked");
    for (v, want) in [
        ("time", MeterMode::Time),
        ("work", MeterMode::Work),
        ("both", MeterMode::Both),
    ] {
        let text = GOOD.replace("repeats = 2", &format!("repeats = 2\nmeter = \"{v}\""));
        assert_eq!(parse(Path::new("s.toml"), &text).unwrap().boot.meter, want);
    }
    let e = err(&GOOD.replace("repeats = 2", "repeats = 2\nmeter = \"cycles\""));
    assert_eq!((e.field.as_str(), e.line), ("boot.meter", 15), "{e}");
    assert!(e.to_string().contains("\"cycles\""), "{e}");
}

#[test]
fn a_scenario_goes_over_either_protocol() {
    let smoke = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/smoke.toml")).unwrap();
    assert!(smoke.speaks_sync());
    let sliding = smoke.over_protocol(SyncProtocol::Sliding);
    let herd = sliding.herd().unwrap();
    assert_eq!(
        (herd.protocol, herd.sync),
        (SyncProtocol::Sliding, SyncKind::Initial)
    );
    let t = sliding.triggered().unwrap();
    assert_eq!(
        (t.protocol, t.reaction),
        (SyncProtocol::Sliding, ReactionKind::Subscribe)
    );
    assert_eq!(sliding.dataset, smoke.dataset, "one dataset");
    let back = sliding.over_protocol(SyncProtocol::V2);
    let t = back.triggered().unwrap();
    assert_eq!(
        (t.protocol, t.reaction),
        (SyncProtocol::V2, ReactionKind::FullState)
    );
    assert_eq!(back.herd().unwrap().clients, smoke.herd().unwrap().clients);
    if let Some(c) = sliding.catchup() {
        assert_eq!(c.protocol, SyncProtocol::Sliding);
        assert_eq!(back.catchup().unwrap().protocol, SyncProtocol::V2);
    }
}

#[test]
fn history_and_presence_are_checked_where_they_are_written() {
    let with = |extra: &str| {
        GOOD.replace(
            "messages_per_room = 3",
            &format!("messages_per_room = 3\n{extra}"),
        )
    };
    let sc = parse(Path::new("s.toml"), GOOD).unwrap();
    assert_eq!(sc.dataset.history_seconds, DEFAULT_HISTORY_SECONDS);
    assert_eq!(sc.dataset.presence, PresenceMode::Tracked);
    let sc = parse(
        Path::new("s.toml"),
        &with("history = \"30d\"\npresence = \"stays\""),
    )
    .unwrap();
    assert_eq!(sc.dataset.history_seconds, 30 * 86_400);
    assert_eq!(sc.dataset.presence, PresenceMode::Stays);
    for (extra, line) in [
        ("history = \"10m\"", 9),
        ("history = \"soon\"", 9),
        ("presence = \"always\"", 9),
    ] {
        let e = err(&with(extra));
        assert_eq!(e.line, line, "{extra}: {e}");
        assert!(e.field.starts_with("dataset."), "{extra}: {e}");
    }
    let native = with("presence = \"stays\"").replace(
        "version = \"1.163.2\"",
        "kind = \"tuwunel\"\nbinary = \"/bin/true\"",
    );
    let e = err(&native);
    assert_eq!(e.field, "dataset.presence", "{e}");
    assert!(e.to_string().contains("tuwunel"), "{e}");
}

#[test]
fn dataset_load_is_api_unless_direct_and_direct_needs_synapse_on_its_own_database() {
    let sc = parse(Path::new("s.toml"), GOOD).unwrap();
    assert_eq!(sc.dataset.load, LoadMethod::Api);
    let direct = GOOD.replace(
        "messages_per_room = 3",
        "messages_per_room = 3\nload = \"direct\"",
    );
    let sc = parse(Path::new("s.toml"), &direct).unwrap();
    assert_eq!(sc.dataset.load, LoadMethod::Direct);
    // `api` stays out of the spec's hash: fixtures built before the key keep their keys.
    let api = GOOD.replace(
        "messages_per_room = 3",
        "messages_per_room = 3\nload = \"api\"",
    );
    let a = parse(Path::new("s.toml"), &api).unwrap();
    assert_eq!(
        a.dataset.spec_hash(),
        parse(Path::new("s.toml"), GOOD)
            .unwrap()
            .dataset
            .spec_hash()
    );
    assert_ne!(a.dataset.spec_hash(), sc.dataset.spec_hash());
    let e = err(&GOOD.replace(
        "messages_per_room = 3",
        "messages_per_room = 3\nload = \"bulk\"",
    ));
    assert_eq!((e.field.as_str(), e.line), ("dataset.load", 9));
    // Into the private PostgreSQL cluster, or a user's (empty) database on this machine.
    let pg = direct.replace("[server]", "[server]\ndatabase = \"postgres\"");
    let sc = parse(Path::new("s.toml"), &pg).unwrap();
    assert_eq!(
        (sc.dataset.load, sc.server.database),
        (LoadMethod::Direct, DatabaseKind::Postgres)
    );
    let external = pg.replace(
        "database = \"postgres\"",
        "database = \"postgres\"\npostgres_url = \"postgresql://u@127.0.0.1/db\"",
    );
    let sc = parse(Path::new("s.toml"), &external).unwrap();
    assert_eq!(sc.dataset.load, LoadMethod::Direct);
    assert!(sc.server.postgres_url.is_some());
}

#[test]
fn synapse_config_is_kept_as_json_and_refuses_keys_hsbench_owns() {
    let text = GOOD.replace(
        "[boot]",
        "[server.synapse_config]\npresence = { enabled = false }\ncaches = { global_factor = 2.0 }\n\n[boot]",
    );
    let s = parse(Path::new("s.toml"), &text).unwrap();
    assert_eq!(
        s.server.synapse_config,
        Some(serde_json::json!({
            "presence": {"enabled": false},
            "caches": {"global_factor": 2.0}
        }))
    );
    let e = err(&GOOD.replace(
        "[boot]",
        "[server.synapse_config]\nlisteners = []\n\n[boot]",
    ));
    assert_eq!(e.field, "server.synapse_config.listeners");
    assert_eq!(e.line, 13);
    assert!(e.message.contains("reserved"), "{e}");
    let native = GOOD.replace(
        "[server]\nversion = \"1.163.2\"",
        "[server]\nkind = \"tuwunel\"\nbinary = \"Cargo.toml\"\n[server.synapse_config]\npresence = { enabled = false }",
    );
    let e = err(&native);
    assert_eq!(e.field, "server.synapse_config");
}

#[test]
fn load_workloads_parse_in_file_order_with_defaults() {
    let text = GOOD.replace(
        "[workload.herd]",
        "[workload.steady]\nclients = 8\nrate = 5\nramp_to = 20\nramp_over = \"10s\"\n\n[workload.triggered]\nclients = 5\nchatter_rate = 1.5\n\n[workload.herd]",
    );
    let s = parse(Path::new("s.toml"), &text).unwrap();
    assert_eq!(
        s.workloads.iter().map(Workload::kind).collect::<Vec<_>>(),
        [
            WorkloadKind::Steady,
            WorkloadKind::Triggered,
            WorkloadKind::Herd
        ]
    );
    let t = s.triggered().unwrap().clone();
    assert_eq!(
        (t.clients, t.chatter_rate, t.reaction, t.retries),
        (5, 1.5, ReactionKind::FullState, 3)
    );
    assert_eq!(t.poll_timeout, Duration::from_secs(30));
    assert_eq!(t.connect_ramp, Duration::ZERO);
    assert_eq!(t.interval, Duration::from_secs(1));
    let st = s.steady().unwrap().clone();
    assert_eq!((st.clients, st.senders), (8, 8));
    assert_eq!(st.timeline_limit, None);
    assert_eq!(
        st.arrivals,
        crate::scenario::arrivals::Arrivals::Ramp {
            from: 5.0,
            to: 20.0,
            over_s: 10.0
        }
    );
}

#[test]
fn load_workload_errors_name_the_field_and_line() {
    let with = |extra: &str| GOOD.replace("[workload.herd]", &format!("{extra}\n[workload.herd]"));
    let e = err(&with("[workload.triggered]\nclients = 6"));
    assert_eq!(e.field, "workload.triggered.clients");
    assert!(e.message.contains("big room"), "{e}");
    assert_eq!(e.line, 18);
    let e = err(&with("[workload.triggered]\nclients = 2\nchatter_rate = 0"));
    assert_eq!(e.field, "workload.triggered.chatter_rate");
    let e = err(&with(
        "[workload.triggered]\nclients = 2\nreaction = \"panic\"",
    ));
    assert_eq!(e.field, "workload.triggered.reaction");
    // Reactions belong to a protocol; protocols are named.
    let e = err(&with(
        "[workload.triggered]\nclients = 2\nprotocol = \"sliding\"\nreaction = \"full_state\"",
    ));
    assert_eq!(e.field, "workload.triggered.reaction");
    assert!(e.message.contains("subscribe"), "{e}");
    let e = err(&with(
        "[workload.triggered]\nclients = 2\nreaction = \"reconnect\"",
    ));
    assert!(e.message.contains("protocol = \"sliding\""), "{e}");
    let e = err(&with(
        "[workload.steady]\nclients = 4\nrate = 1\nprotocol = \"v3\"",
    ));
    assert_eq!(e.field, "workload.steady.protocol");
    assert!(e.message.contains("\"sliding\""), "{e}");
    let s = parse(
        Path::new("s.toml"),
        &with("[workload.triggered]\nclients = 2\nprotocol = \"sliding\""),
    )
    .unwrap();
    let t = s.triggered().unwrap();
    assert_eq!(
        (t.protocol, t.reaction),
        (SyncProtocol::Sliding, ReactionKind::Subscribe)
    );
    let e = err(&GOOD.replace("[workload.herd]", "[workload.herd]\nprotocol = \"sliding\""));
    assert_eq!(e.field, "workload.herd.sync");
    let e = err(&GOOD.replace(
        "sync = \"full_state\"",
        "protocol = \"sliding\"\nlazy_load_members = true",
    ));
    assert_eq!(e.field, "workload.herd.lazy_load_members");
    let e = err(&with("[workload.triggered]\nclients = 2\ntolerance = 1.5"));
    assert_eq!(e.field, "workload.triggered.tolerance");
    let e = err(&with(
        "[workload.triggered]\nclients = 2\nbaseline = \"1s\"",
    ));
    assert_eq!(e.field, "workload.triggered.baseline");
    let e = err(&with(
        "[workload.steady]\nclients = 4\nsenders = 5\nrate = 1",
    ));
    assert_eq!(e.field, "workload.steady.senders");
    let e = err(&with(
        "[workload.steady]\nclients = 4\nrate = 1\nramp_over = \"5s\"",
    ));
    assert_eq!(e.field, "workload.steady.ramp_over");
    let steady = |extra: &str| {
        with(&format!(
            "[workload.steady]\nclients = 4\nrate = 1\n{extra}"
        ))
    };
    let limit = parse(Path::new("s.toml"), &steady("timeline_limit = 1")).unwrap();
    assert_eq!(limit.steady().unwrap().timeline_limit, Some(1));
    for bad in [
        "timeline_limit = 0",
        "timeline_limit = 1001",
        "protocol = \"sliding\"\ntimeline_limit = 20",
    ] {
        let e = err(&steady(bad));
        assert_eq!(e.field, "workload.steady.timeline_limit", "{bad}");
    }
    let e = err(&GOOD.replace("name = \"t\"", "name = \" \""));
    assert_eq!(e.field, "name", "{e}");
    let pause = parse(Path::new("s.toml"), &steady("poll_pause = \"2s\"")).unwrap();
    assert_eq!(pause.steady().unwrap().poll_pause, Duration::from_secs(2));
    assert_eq!(limit.steady().unwrap().poll_pause, Duration::ZERO);
    let e = err(&steady("poll_pause = \"soon\""));
    assert_eq!(e.field, "workload.steady.poll_pause");
    let e = err(&with("[workload.steady]\nclients = 4\nrate = 1\nbogus = 1"));
    assert!(e.to_string().contains("bogus"), "{e}");
    let c = parse(
        Path::new("s.toml"),
        &with("[workload.catchup]\nreaders = 2\nbacklog = 50"),
    )
    .unwrap()
    .catchup()
    .unwrap()
    .clone();
    assert_eq!(
        (c.readers, c.protocol, c.backlog, c.page, c.timeline_limit),
        (2, SyncProtocol::V2, 50, 100, 20)
    );
    let sliding = parse(
        Path::new("s.toml"),
        &with("[workload.catchup]\nreaders = 2\nbacklog = 50\nprotocol = \"sliding\""),
    )
    .unwrap();
    assert_eq!(sliding.catchup().unwrap().protocol, SyncProtocol::Sliding);
    let e = err(&with(
        "[workload.catchup]\nreaders = 2\nbacklog = 50\nprotocol = \"v5\"",
    ));
    assert_eq!(e.field, "workload.catchup.protocol");
    let e = err(&with("[workload.catchup]\nreaders = 50\nbacklog = 5"));
    assert_eq!(e.field, "workload.catchup.readers");
    let e = err(&with(
        "[workload.catchup]\nreaders = 2\nbacklog = 5\npage = 0",
    ));
    assert_eq!(e.field, "workload.catchup.page");
    // Thresholds on the new figures are known; cold. variants are not.
    let ok = GOOD.to_string() + "[thresholds]\n\"triggered.recovery\" = \"< 60s\"\n";
    assert!(parse(Path::new("s.toml"), &ok).is_ok());
    let bad = GOOD.to_string() + "[thresholds]\n\"cold.steady.send.p99\" = \"< 60s\"\n";
    assert!(parse(Path::new("s.toml"), &bad).is_err());
}

#[test]
fn good_file_parses_with_defaults() {
    let s = parse(Path::new("s.toml"), GOOD).unwrap();
    assert_eq!(s.name, "t");
    assert_eq!(s.dataset.users, 10);
    assert_eq!(s.dataset.max_room_members, 10);
    assert_eq!(s.server.version, "1.163.2");
    assert_eq!(s.boot.repeats, 2);
    assert_eq!(s.boot.timeout, Duration::from_secs(90));
    assert_eq!(s.boot.shutdown_timeout, Duration::from_secs(30));
    let h = s.herd().unwrap().clone();
    assert_eq!((h.clients, h.sync), (4, SyncKind::FullState));
    assert_eq!(h.request_timeout, Duration::from_secs(120));
}

#[test]
fn unknown_field_is_located() {
    let e = err(&GOOD.replace("rooms = 2", "rooms = 2\nromos = 3"));
    assert_eq!((e.line, e.column), (7, 1), "{e}");
    assert_eq!(e.field, "dataset.romos");
    assert!(e.message.contains("unknown field `romos`"), "{e}");
}

#[test]
fn datasets_beyond_the_planned_size_are_located() {
    let e = err(&GOOD.replace("users = 10", "users = 99999999999999"));
    assert_eq!(
        (e.line, e.column, e.field.as_str()),
        (5, 9, "dataset.users"),
        "{e}"
    );
    assert!(e.message.contains("largest dataset"), "{e}");
    let e = err(&GOOD.replace("messages_per_room = 3", "messages_per_room = 99999999999"));
    assert_eq!(e.field, "dataset.messages_per_room", "{e}");
}

#[test]
fn error_gates_parse_as_percentages() {
    let ok = parse(
        Path::new("s.toml"),
        &format!("{GOOD}\n[thresholds]\n\"herd.errors\" = \"< 5%\"\n"),
    )
    .unwrap();
    assert_eq!(ok.thresholds[0].limit, 5.0);
    let e = err(&format!(
        "{GOOD}\n[thresholds]\n\"herd.errors\" = \"< 5s\"\n"
    ));
    assert_eq!(e.field, "thresholds.herd.errors");
    assert!(e.message.contains("share of the requests"), "{e}");
}

#[test]
fn wrong_type_is_located() {
    let e = err(&GOOD.replace("users = 10", "users = \"ten\""));
    assert_eq!((e.line, e.column), (5, 9), "{e}");
    assert_eq!(e.field, "dataset.users");
}

#[test]
fn too_many_clients_is_located() {
    let e = err(&GOOD.replace("clients = 4", "clients = 11"));
    assert_eq!(e.field, "workload.herd.clients");
    assert_eq!((e.line, e.column), (18, 11), "{e}");
    assert!(e.message.contains("need as many users"), "{e}");
    let shown = e.to_string();
    assert!(
        shown.starts_with("s.toml:18:11: `workload.herd.clients`:"),
        "{shown}"
    );
}

#[test]
fn bad_duration_and_enum_are_located() {
    let e = err(&GOOD.replace("\"90s\"", "\"soon\""));
    assert_eq!(
        (e.field.as_str(), e.line, e.column),
        ("boot.timeout", 15, 11)
    );
    let e = err(&GOOD.replace("\"full_state\"", "\"partial\""));
    assert_eq!(
        (e.field.as_str(), e.line, e.column),
        ("workload.herd.sync", 19, 8)
    );
}

#[test]
fn missing_field_and_syntax_error_are_reported() {
    let e = err(&GOOD.replace("seed = 7\n", ""));
    assert_eq!(e.field, "dataset");
    assert!(e.message.contains("missing field `seed`"), "{e}");
    let e = err("[dataset\nseed = 1");
    assert_eq!(e.line, 1, "{e}");
}

#[test]
fn zero_and_big_room_checks() {
    let e = err(&GOOD.replace("repeats = 2", "repeats = 0"));
    assert_eq!(e.field, "boot.repeats");
    let e = err(&GOOD.replace("big_room_members = 5", "big_room_members = 50"));
    assert_eq!(e.field, "dataset.big_room_members");
    let e = err(&GOOD.replace("[server]", "[server]\ndatabase = \"mysql\""));
    assert_eq!((e.field.as_str(), e.line), ("server.database", 11));
}

#[test]
fn boot_background_and_crash_restarts_parse() {
    let s = parse(
        Path::new("s.toml"),
        &GOOD.replace(
            "[boot]",
            "[boot]\nbackground = \"45s\"\ncrash_restarts = 2\ncrash_writes = 0",
        ),
    )
    .unwrap();
    assert_eq!(s.boot.background, Some(Duration::from_secs(45)));
    assert_eq!((s.boot.crash_restarts, s.boot.crash_writes), (2, 0));
    let s = parse(Path::new("s.toml"), GOOD).unwrap();
    assert_eq!(s.boot.background, None);
    assert_eq!(
        (s.boot.crash_restarts, s.boot.crash_writes),
        (0, DEFAULT_CRASH_WRITES)
    );
    let e = err(&GOOD.replace("[boot]", "[boot]\ncrash_restarts = 21"));
    assert_eq!((e.field.as_str(), e.line), ("boot.crash_restarts", 14));
    let e = err(&GOOD.replace("[boot]", "[boot]\nbackground = \"soon\""));
    assert_eq!(e.field, "boot.background");
}

#[test]
fn native_servers_need_a_binary_and_take_no_synapse_settings() {
    let server = |body: &str| {
        GOOD.replace(
            "[server]\nversion = \"1.163.2\"",
            &format!("[server]\n{body}"),
        )
    };
    // /bin/sh stands in for a server binary: only its existence is checked here.
    let s = parse(
        Path::new("s.toml"),
        &server("kind = \"tuwunel\"\nbinary = \"/bin/sh\""),
    )
    .unwrap();
    assert_eq!(s.server.kind, ServerKind::Tuwunel);
    assert_eq!(s.server.binary.as_deref(), Some(Path::new("/bin/sh")));
    assert_eq!(s.server.profile().unwrap().name, "tuwunel");
    let e = err(&server("kind = \"tuwunel\""));
    assert_eq!((e.field.as_str(), e.line), ("server.binary", 11));
    let e = err(&server(
        "kind = \"conduwuit\"\nbinary = \"/no/such/server\"",
    ));
    assert_eq!((e.field.as_str(), e.line), ("server.binary", 12));
    assert!(e.message.contains("/no/such/server is not a file"), "{e}");
    let e = err(&server(
        "kind = \"conduit\"\nbinary = \"/bin/sh\"\nversion = \"1\"",
    ));
    assert_eq!(e.field, "server.version");
    let e = err(&server(
        "kind = \"conduit\"\nbinary = \"/bin/sh\"\ndatabase = \"postgres\"",
    ));
    assert_eq!(e.field, "server.database");
    let e = err(&server("binary = \"/bin/sh\""));
    assert_eq!(e.field, "server.binary");
    let e = err(&server("kind = \"generic\"\nbinary = \"/bin/sh\""));
    assert_eq!(e.field, "server.profile");
    let e = err(&server("kind = \"dendrite\""));
    assert!(e.message.contains("\"generic\""), "{e}");
    let e = err(&server(
        "kind = \"tuwunel\"\nbinary = \"${HSBENCH_SURELY_UNSET_VAR}/tuwunel\"",
    ));
    assert!(
        e.message.contains("HSBENCH_SURELY_UNSET_VAR is not set"),
        "{e}"
    );
    // A generic profile of the user's, relative to the scenario's directory.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/servers/x.toml");
    let s = parse(
        &dir,
        &server("kind = \"generic\"\nbinary = \"/bin/sh\"\nprofile = \"generic-synapse.toml\""),
    )
    .unwrap();
    assert_eq!(s.server.profile().unwrap().name, "generic-synapse");
    // Thresholds name the profile's phases, not Synapse's.
    let e = err(&server(
        "kind = \"tuwunel\"\nbinary = \"/bin/sh\"\n[thresholds]\n\"phase.db_prepare\" = \"< 1s\"",
    ));
    assert_eq!(e.field, "thresholds.phase.db_prepare");
    assert_eq!(normalize(Path::new("/a/b/../c/./d")), Path::new("/a/c/d"));
    // A Synapse source checkout: a directory with pyproject.toml, not with `version`.
    let e = err(&GOOD.replace(
        "[server]\nversion = \"1.163.2\"",
        "[server]\nsource = \"/tmp\"",
    ));
    assert_eq!(e.field, "server.source");
    assert!(e.message.contains("not a Synapse source checkout"), "{e}");
    let root = env!("CARGO_MANIFEST_DIR");
    let e = err(&GOOD.replace("[server]", &format!("[server]\nsource = \"{root}\"")));
    assert_eq!(e.field, "server.version");
    // (hsbench's own root has a Cargo.toml, no pyproject.toml)
    assert!(!Path::new(root).join("pyproject.toml").exists());
}

#[test]
fn postgres_url_must_be_loopback() {
    let pg = |url: &str| {
        GOOD.replace(
            "[server]",
            &format!("[server]\ndatabase = \"postgres\"\npostgres_url = \"{url}\""),
        )
    };
    let s = parse(
        Path::new("s.toml"),
        &pg("postgresql://syn:pw@127.0.0.1:5433/syn"),
    )
    .unwrap();
    let u = s.server.postgres_url.unwrap();
    assert_eq!(
        (u.host.as_str(), u.port, u.user.as_str()),
        ("127.0.0.1", 5433, "syn")
    );
    assert_eq!(u.password.as_deref(), Some("pw"));
    let e = err(&pg("postgresql://syn@db.example.org/syn"));
    assert_eq!((e.field.as_str(), e.line), ("server.postgres_url", 12));
    assert!(e.message.contains("not loopback"), "{e}");
    let s = parse(
        Path::new("s.toml"),
        &GOOD.replace("[server]", "[server]\ndatabase = \"postgres\""),
    )
    .unwrap();
    assert_eq!(s.server.database, DatabaseKind::Postgres);
    assert!(s.server.postgres_url.is_none());
    // The start-up statement log: on by default on the private cluster only.
    assert_eq!(s.boot.slow_statements, Some(DEFAULT_SLOW_STATEMENTS));
    let sqlite = parse(Path::new("s.toml"), GOOD).unwrap();
    assert_eq!(sqlite.boot.slow_statements, None);
    let with = |server: &str, v: &str| {
        GOOD.replace("[server]", &format!("[server]\n{server}"))
            .replace("[boot]", &format!("[boot]\nslow_statements = \"{v}\""))
    };
    let pg = "database = \"postgres\"";
    for (v, want) in [
        ("0s", Some(Duration::ZERO)),
        ("250ms", Some(Duration::from_millis(250))),
        ("off", None),
    ] {
        let s = parse(Path::new("s.toml"), &with(pg, v)).unwrap();
        assert_eq!(s.boot.slow_statements, want, "{v}");
    }
    for (server, v) in [(pg, "2h"), (pg, "soon"), ("", "5ms")] {
        let e = err(&with(server, v));
        assert_eq!(e.field, "boot.slow_statements", "{server} {v}: {e}");
    }
    let e = err(&with(
        "database = \"postgres\"\npostgres_url = \"postgresql://s@127.0.0.1/s\"",
        "5ms",
    ));
    assert!(e.message.contains("private cluster"), "{e}");
}

#[test]
fn sweep_is_validated_at_every_value() {
    let ok = parse(
        Path::new("s.toml"),
        &format!("{GOOD}\n[sweep]\ndimension = \"users\"\nvalues = [5, 10, 40]\n"),
    )
    .unwrap();
    let sw = ok.sweep.unwrap();
    assert_eq!(
        (sw.dimension, sw.values.len(), sw.workloads),
        (SweepDimension::Users, 3, false)
    );
    let e = err(&format!(
        "{GOOD}\n[sweep]\ndimension = \"users\"\nvalues = [2, 10, 40]\n"
    ));
    assert_eq!(e.field, "sweep.values");
    assert!(e.message.contains("at users = 2"), "{e}");
    let e = err(&format!(
        "{GOOD}\n[sweep]\ndimension = \"users\"\nvalues = [10, 5, 40]\n"
    ));
    assert!(e.message.contains("ascending"), "{e}");
    let e = err(&format!(
        "{GOOD}\n[sweep]\ndimension = \"users\"\nvalues = [10, 40]\n"
    ));
    assert!(e.message.contains("at least 3"), "{e}");
    let e = err(&format!(
        "{GOOD}\n[sweep]\ndimension = \"cats\"\nvalues = [1, 2, 3]\n"
    ));
    assert_eq!(e.field, "sweep.dimension");
    assert!(e.message.contains("big_room_members"), "{e}");
}

#[test]
fn compare_gates_parse_and_errors_are_located() {
    let ok = parse(
        Path::new("t.toml"),
        &format!(
            "{GOOD}\n[compare]\nnoise = 0.08\nalpha = 0.01\n[compare.noise_by_metric]\n\"phase.db_prepare\" = 0.2\n\"cold.milestone.port_open\" = 0.15\n\"herd.sync.p99\" = 0.3\n"
        ),
    )
    .unwrap();
    assert_eq!((ok.compare.noise, ok.compare.alpha), (0.08, 0.01));
    assert_eq!(ok.compare.noise_by_metric["phase.db_prepare"], 0.2);
    assert_eq!(ok.compare.noise_by_metric.len(), 3);
    // Defaults without the table.
    let d = parse(Path::new("t.toml"), GOOD).unwrap();
    assert_eq!(d.compare, CompareSpec::default());
    assert_eq!(d.compare.min_delta_ms, DEFAULT_MIN_DELTA_MS);
    let ok = parse(
        Path::new("t.toml"),
        &format!("{GOOD}\n[compare]\nmin_delta = \"250ms\"\n"),
    )
    .unwrap();
    assert_eq!(ok.compare.min_delta_ms, 250.0);
    let e = err(&format!("{GOOD}\n[compare]\nmin_delta = \"soon\"\n"));
    assert_eq!(e.field, "compare.min_delta");
    let e = err(&format!("{GOOD}\n[compare]\nnoise = 1.5\n"));
    assert_eq!(e.field, "compare.noise");
    assert!(e.message.contains("[0, 1)"), "{e}");
    let e = err(&format!("{GOOD}\n[compare]\nalpha = 0\n"));
    assert_eq!(e.field, "compare.alpha");
    let e = err(&format!(
        "{GOOD}\n[compare.noise_by_metric]\n\"phase.nope\" = 0.1\n"
    ));
    assert_eq!(e.field, "compare.noise_by_metric.phase.nope");
    assert!(e.message.contains("phase.<"), "{e}");
    assert!(e.line > 20, "{e}");
}

#[test]
fn thresholds_parse_and_errors_are_located() {
    let ok = parse(
        Path::new("t.toml"),
        &format!(
            "{GOOD}\n[thresholds]\ntime_to_ready = \"< 10s\"\n\"boot.shutdown\" = \"<= 3s\"\n\"herd.sync.p99\" = \"< 500ms\"\npeak_rss = \"< 512MiB\"\n\"phase.db_prepare\" = \"< 2s\"\n"
        ),
    )
    .unwrap();
    let t = |m: &str| {
        ok.thresholds
            .iter()
            .find(|t| t.metric == m)
            .unwrap()
            .clone()
    };
    assert_eq!(t("time_to_ready").limit, 10_000.0);
    assert!(t("shutdown").inclusive && t("shutdown").limit == 3000.0);
    assert_eq!(t("herd.sync.p99").limit, 500.0);
    assert_eq!(t("peak_rss").limit, 512.0 * 1024.0 * 1024.0);
    let e = err(&format!(
        "{GOOD}\n[thresholds]\ntime_to_ready = \"> 10s\"\n"
    ));
    assert_eq!(e.field, "thresholds.time_to_ready");
    assert!(e.message.contains("upper bound"), "{e}");
    let e = err(&format!(
        "{GOOD}\n[thresholds]\n\"phase.nope\" = \"< 1s\"\n"
    ));
    assert!(
        e.message.contains("unknown metric") && e.message.contains("db_prepare"),
        "{e}"
    );
    let e = err(&format!(
        "{GOOD}\n[thresholds]\npeak_rss = \"< 5 parsecs\"\n"
    ));
    assert!(e.message.contains("size unit"), "{e}");
}

#[test]
fn spec_hash_is_stable_and_sensitive() {
    let a = parse(Path::new("a.toml"), GOOD).unwrap().dataset;
    let mut b = a.clone();
    assert_eq!(a.spec_hash(), b.spec_hash());
    b.seed += 1;
    assert_ne!(a.spec_hash(), b.spec_hash());
}

#[test]
fn server_limits_parse_and_a_bad_value_names_its_field_and_line() {
    let with = |extra: &str| {
        GOOD.replace(
            "version = \"1.163.2\"",
            &format!("version = \"1.163.2\"\n{extra}"),
        )
    };
    let s = parse(
        Path::new("s.toml"),
        &with("cpus = 1.5\nmemory = \"2GiB\"\ncpuset = \"0-1,3\""),
    )
    .unwrap();
    let l = s.server.limits.expect("limits");
    assert_eq!(
        (l.cpus, l.memory, l.cpuset),
        (Some(1.5), Some(2 << 30), Some(vec![0, 1, 3]))
    );
    assert!(
        parse(Path::new("s.toml"), GOOD)
            .unwrap()
            .server
            .limits
            .is_none()
    );
    for (extra, field, says) in [
        ("cpus = 0", "server.cpus", "not a CPU quota"),
        ("cpus = -1.0", "server.cpus", "not a CPU quota"),
        ("memory = \"10MiB\"", "server.memory", "below the least"),
        ("memory = \"lots\"", "server.memory", "lots"),
        ("cpuset = \"2-1\"", "server.cpuset", "backwards"),
        ("cpuset = \"a\"", "server.cpuset", "not a core number"),
    ] {
        let e = err(&with(extra));
        assert_eq!((e.field.as_str(), e.line), (field, 12), "{extra}: {e}");
        assert!(e.to_string().contains(says), "{extra}: {e}");
    }
}
