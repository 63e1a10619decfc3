"""A second, independent reader of an hsbench fixture: matrix-nio, a real client library.

Logs in (restores the access tokens hsbench wrote) as each sampled user, makes the first /sync a
client makes after the server booted, and compares what the library shows with the plan that
hsbench's test wrote: joined rooms, each room's joined members and display name, the DMs the
`m.direct` account data marks, the messages the room's history holds, the unread notification
counts, and (after waiting past the server's presence timeouts) every sampled user's presence.

Usage: nio_fidelity.py BASE_URL EXPECTATIONS.json
Prints one JSON object: {"checked": {...counts...}, "mismatches": [...]}.
"""

import asyncio
import json
import sys
import time

from nio import AsyncClient, AsyncClientConfig
from nio.responses import (
    DirectRoomsResponse,
    PresenceGetResponse,
    RoomMessagesResponse,
    SyncResponse,
)


async def read_user(base_url, user, checked, mismatches):
    who = user["user_id"]
    client = AsyncClient(
        base_url, who, config=AsyncClientConfig(encryption_enabled=False)
    )
    client.restore_login(who, "HSBFIDELITY", user["token"])
    try:
        sync = await client.sync(timeout=0, full_state=True)
        if not isinstance(sync, SyncResponse):
            mismatches.append(f"{who}: /sync failed: {sync}")
            return
        want_rooms = user["rooms"]
        got_rooms = set(client.rooms)
        checked["users"] += 1
        if got_rooms != set(want_rooms):
            mismatches.append(
                f"{who}: in {len(got_rooms)} rooms, the plan says {len(want_rooms)}"
            )
        for room_id, want in want_rooms.items():
            room = client.rooms.get(room_id)
            if room is None:
                continue
            checked["rooms"] += 1
            members = set(room.users) - set(room.invited_users)
            if members != set(want["members"]):
                mismatches.append(
                    f"{who} in {room_id}: {len(members)} joined members, the plan says {len(want['members'])}"
                )
            if room.display_name != want["display_name"]:
                mismatches.append(
                    f"{who} in {room_id}: named {room.display_name!r}, the plan says {want['display_name']!r}"
                )
            # Where Synapse's 30-second notification rotation decides (whether an invite or a
            # message redacted later still counts), the count lies between the bounds.
            if not want["unread_min"] <= room.unread_notifications <= want["unread_max"]:
                mismatches.append(
                    f"{who} in {room_id}: {room.unread_notifications} unread, the plan says {want['unread']} ({want['unread_min']} to {want['unread_max']} by the server's rotation timing)"
                )
            checked["unread_exact"] += int(room.unread_notifications == want["unread"])
            checked["unread_nonzero"] += int(want["unread"] > 0)
            # The room's whole history, newest first, as a client scrolls back.
            messages, token = 0, sync.next_batch
            for _ in range(100):
                page = await client.room_messages(room_id, start=token, limit=200)
                if not isinstance(page, RoomMessagesResponse):
                    mismatches.append(f"{who} in {room_id}: /messages failed: {page}")
                    break
                messages += sum(
                    1 for e in page.chunk if e.source.get("type") == "m.room.message"
                )
                if not page.chunk or not page.end or page.end == token:
                    break
                token = page.end
            if messages != want["messages"]:
                mismatches.append(
                    f"{who} in {room_id}: {messages} messages, the plan says {want['messages']}"
                )
        direct = await client.list_direct_rooms()
        if user["direct"]:
            checked["dm_users"] += 1
            got = direct.rooms if isinstance(direct, DirectRoomsResponse) else {}
            got = {k: sorted(v) for k, v in got.items()}
            want = {k: sorted(v) for k, v in user["direct"].items()}
            if got != want:
                mismatches.append(f"{who}: m.direct {got}, the plan says {want}")
            for partner, rooms in user["direct"].items():
                for r in rooms:
                    room = client.rooms.get(r)
                    if room is not None and room.is_group and len(room.users) == 2:
                        checked["dm_rooms"] += 1
    finally:
        await client.close()


async def presence(base_url, users, checked, mismatches):
    # Each user reads their own presence (others' is visible only to those sharing a room).
    for user in users:
        client = AsyncClient(
            base_url, user["user_id"], config=AsyncClientConfig(encryption_enabled=False)
        )
        client.restore_login(user["user_id"], "HSBFIDELITY", user["token"])
        try:
            got = await client.get_presence(user["user_id"])
        finally:
            await client.close()
        state = got.presence if isinstance(got, PresenceGetResponse) else f"error {got}"
        checked["presence"] += 1
        checked["presence_online"] += int(user["presence"] == "online")
        if state != user["presence"]:
            mismatches.append(
                f"{user['user_id']}: presence {state}, the plan says {user['presence']}"
            )


async def main():
    base_url, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        plan = json.load(f)
    checked = {
        "users": 0,
        "rooms": 0,
        "unread_nonzero": 0,
        "unread_exact": 0,
        "dm_users": 0,
        "dm_rooms": 0,
        "presence": 0,
        "presence_online": 0,
    }
    mismatches = []
    started = time.monotonic()
    for user in plan["users"]:
        await read_user(base_url, user, checked, mismatches)
    # Past the server's presence timeouts (Synapse: 30 s after boot, then every 5 s).
    wait = plan["presence_after_s"] - (time.monotonic() - started)
    if wait > 0:
        await asyncio.sleep(wait)
    await presence(base_url, plan["users"], checked, mismatches)
    print(json.dumps({"checked": checked, "mismatches": mismatches}))


asyncio.run(main())
