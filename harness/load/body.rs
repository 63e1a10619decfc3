//! A response body read to its end, counted and scanned in chunks for the few keys a workload
//! needs (sync tokens, list counts, hsbench's sequence numbers), without holding it.

use crate::load::engine::ErrorKind;

/// Read a response to its end, counting bytes; keep at most `keep` bytes of it.
pub async fn read_body(
    resp: &mut reqwest::Response,
    keep: usize,
    scan: Option<&mut Scanner>,
) -> (u64, Vec<u8>, Option<ErrorKind>) {
    let mut n = 0u64;
    let mut kept = Vec::new();
    let mut scan = scan;
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                n += c.len() as u64;
                if kept.len() < keep {
                    let take = (keep - kept.len()).min(c.len());
                    kept.extend_from_slice(&c[..take]);
                }
                if let Some(s) = scan.as_deref_mut() {
                    s.feed(&c);
                }
            }
            Ok(None) => return (n, kept, None),
            Err(e) => return (n, kept, Some(ErrorKind::of(&e))),
        }
    }
}

/// Finds the few keys hsbench needs in a JSON body streamed in chunks, without holding the body
/// (re-sync answers are megabytes): `"next_batch":"<token>"` (v2), `"pos":"<token>"` and the
/// list's `"count":<n>` (sliding sync), and every `"org.hsbench.seq":<n>`. The first `next_batch`,
/// `pos` and `count` are kept (each is a top-level or list-level key that comes once). Bounded:
/// it carries at most a few hundred bytes between chunks.
#[derive(Debug, Default)]
pub struct Scanner {
    carry: Vec<u8>,
    pub next_batch: Option<String>,
    pub pos: Option<String>,
    pub count: Option<u64>,
    pub seqs: Vec<u64>,
    pub saw_trigger: bool,
    /// Some room's timeline was `limited` (`"limited":true`).
    pub saw_limited: bool,
}

/// What a key's value is, and where it goes.
#[derive(Clone, Copy)]
enum Key {
    NextBatch,
    Pos,
    Seq,
    Count,
    /// The triggered herd's event type, anywhere (a timeline or a state section).
    Trigger,
    /// A limited timeline.
    Limited,
}

const KEYS: &[(&[u8], Key)] = &[
    (b"\"next_batch\":\"", Key::NextBatch),
    (b"\"pos\":\"", Key::Pos),
    (b"\"org.hsbench.seq\":", Key::Seq),
    (b"\"count\":", Key::Count),
    (b"\"org.hsbench.trigger\"", Key::Trigger),
    (b"\"limited\":true", Key::Limited),
];

/// The longest key.
#[cfg(test)]
const MAX_KEY: usize = 21;

/// The longest token a match may need after its key.
const MAX_TAIL: usize = 256;

impl Scanner {
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(chunk);
        let mut consumed = 0;
        let mut i = 0;
        'scan: while i < buf.len() {
            if buf[i] == b'"' {
                let rest = &buf[i..];
                for &(key, kind) in KEYS {
                    if !rest.starts_with(key) {
                        if rest.len() < key.len() && key.starts_with(rest) {
                            break 'scan; // a key may be cut at the chunk's end
                        }
                        continue;
                    }
                    let v = &rest[key.len()..];
                    if let Key::Trigger | Key::Limited = kind {
                        match kind {
                            Key::Trigger => self.saw_trigger = true,
                            _ => self.saw_limited = true,
                        }
                        i += key.len();
                        consumed = i;
                        continue 'scan;
                    }
                    match kind {
                        Key::Trigger | Key::Limited => unreachable!("handled above"),
                        Key::NextBatch | Key::Pos => match v.iter().position(|&b| b == b'"') {
                            Some(end) => {
                                let slot = match kind {
                                    Key::NextBatch => &mut self.next_batch,
                                    _ => &mut self.pos,
                                };
                                if slot.is_none() {
                                    *slot = Some(String::from_utf8_lossy(&v[..end]).into());
                                }
                                i += key.len() + end;
                                consumed = i;
                                continue 'scan;
                            }
                            None if v.len() < MAX_TAIL => break 'scan,
                            None => {}
                        },
                        Key::Seq | Key::Count => {
                            let digits = v.iter().take_while(|b| b.is_ascii_digit()).count();
                            if digits == v.len() && v.len() < 24 {
                                break 'scan; // the number may go on in the next chunk
                            }
                            if let Ok(n) = std::str::from_utf8(&v[..digits])
                                .unwrap_or("")
                                .parse::<u64>()
                            {
                                match kind {
                                    Key::Seq => self.seqs.push(n),
                                    _ => {
                                        self.count.get_or_insert(n);
                                    }
                                }
                            }
                            i += key.len() + digits;
                            consumed = i;
                            continue 'scan;
                        }
                    }
                    break;
                }
            }
            i += 1;
            consumed = i;
        }
        self.carry = buf[consumed..].to_vec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanner_finds_keys_across_any_chunking() {
        let body = br#"{"rooms":{"join":{"!a:x":{"timeline":{"events":[{"type":"m.room.message","content":{"body":"b","org.hsbench.seq":12345}},{"content":{"org.hsbench.seq":7}}],"prev_batch":"p","limited":true}}}},"next_batch":"s72_19_0_4"}"#;
        for size in 1..body.len() {
            let mut s = Scanner::default();
            for c in body.chunks(size) {
                s.feed(c);
            }
            assert_eq!(s.next_batch.as_deref(), Some("s72_19_0_4"), "chunk {size}");
            assert_eq!(s.seqs, vec![12345, 7], "chunk {size}");
            assert!(s.saw_limited && !s.saw_trigger, "chunk {size}");
            assert!(s.carry.len() <= MAX_TAIL + MAX_KEY);
        }
        let sliding = br#"{"pos":"s1_2","lists":{"all_rooms":{"count":37}},"rooms":{"!a:x":{"notification_count":2,"timeline":[{"content":{"org.hsbench.seq":9}},{"type":"org.hsbench.trigger","content":{}}],"joined_count":12}}}"#;
        for size in 1..sliding.len() {
            let mut s = Scanner::default();
            for c in sliding.chunks(size) {
                s.feed(c);
            }
            assert_eq!(s.pos.as_deref(), Some("s1_2"), "chunk {size}");
            assert_eq!(s.count, Some(37), "chunk {size}");
            assert_eq!(s.seqs, vec![9], "chunk {size}");
            assert!(s.saw_trigger && !s.saw_limited, "chunk {size}");
        }
    }
}
