use super::*;
use crate::dataset::pg_sink::encode;

#[test]
fn copy_text_escapes_what_copy_reads_specially() {
    let mut buf = Vec::new();
    for v in [
        Val::Text("a\tb\nc\\d\re"),
        Val::Null,
        Val::Int(-42),
        Val::Text(""),
    ] {
        encode(&mut buf, &v);
        buf.push(b'|');
    }
    assert_eq!(
        String::from_utf8(buf).unwrap(),
        "a\\tb\\nc\\\\d\\re|\\N|-42||"
    );
}

#[test]
fn sqlite_keeps_the_leading_columns_of_its_search_tables() {
    assert_eq!(
        Table::EventSearch.sqlite_columns(),
        ["event_id", "room_id", "key", "value"]
    );
    assert_eq!(
        Table::UserDirectorySearch.sqlite_columns(),
        ["user_id", "value"]
    );
    assert_eq!(Table::Events.sqlite_columns(), Table::Events.columns());
}

/// Every id column of a room's tables has its space; depths, counts and timestamps none.
#[test]
fn id_roles_name_every_room_id_column() {
    let roles = |t: Table| -> Vec<(&str, IdRole)> {
        t.columns()
            .iter()
            .filter_map(|c| t.id_role(c).map(|r| (*c, r)))
            .collect()
    };
    use IdRole::*;
    assert_eq!(roles(Table::Events), [("stream_ordering", Stream)]);
    assert_eq!(
        roles(Table::ReceiptsLinearized),
        [("stream_id", Receipt), ("event_stream_ordering", Stream)]
    );
    assert_eq!(
        roles(Table::StateGroupEdges),
        [
            ("state_group", StateGroup),
            ("prev_state_group", StateGroup)
        ]
    );
    assert_eq!(
        roles(Table::EventAuthChainLinks),
        [("origin_chain_id", Chain), ("target_chain_id", Chain)]
    );
    assert_eq!(
        roles(Table::SlidingSyncJoinedRooms),
        [("event_stream_ordering", Stream), ("bump_stamp", Stream)]
    );
    assert!(roles(Table::UserStatsCurrent).is_empty());
    assert!(roles(Table::RoomStatsState).is_empty());
}

/// A room's rows come back as they went in, ids moved by the base and nothing else.
#[test]
fn room_rows_replay_moves_ids_only() {
    let mut rows = RoomRows::default();
    rows.insert(Table::StateGroupEdges, &[Val::Int(2), Val::Int(1)])
        .unwrap();
    rows.insert(
        Table::EventPushSummary,
        &[
            Val::Text("@a:x"),
            Val::Text("!r"),
            Val::Int(3),
            Val::Int(7),
            Val::Int(3),
            Val::Null,
            Val::Text("main"),
        ],
    )
    .unwrap();
    let collected = Collect::default();
    let mut out = collected.clone();
    let base = IdBase {
        stream: 100,
        state_group: 10,
        chain: 5,
        receipt: 1,
    };
    rows.replay(&mut out, &base).unwrap();
    assert_eq!(
        *collected.0.lock().unwrap(),
        [
            "state_group_edges [Int(12), Int(11)]",
            "event_push_summary [Text(\"@a:x\"), Text(\"!r\"), Int(3), Int(107), Int(3), Null, Text(\"main\")]",
        ]
    );
}
