//! The journal file: one line per change, `CRC32 SP JSON LF`, appended and synced
//! before the change is answered. Reading it back stops at the first line that is
//! not whole and sound: when it is the last line, that is a write cut short by a
//! crash (the tail is cut off, and the cut is reported); when more lines follow,
//! the file was damaged some other way and is refused.

use super::delta::Delta;
use crate::state::ServiceState;
use serde::{Deserialize, Serialize};

/// One commit: all of it or none of it is in the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Record {
    /// One more than the record (or snapshot) before it.
    pub(crate) seq: u64,
    /// What the commit did, service by service.
    pub(crate) changes: Vec<Change>,
}

/// What a commit did to one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Change {
    /// A service's state changed.
    Update {
        /// The service.
        service: String,
        /// How.
        delta: Delta,
    },
    /// A reload added a service.
    Add {
        /// The service.
        service: String,
        /// Its state.
        state: Box<ServiceState>,
    },
    /// A reload removed a service.
    Remove {
        /// The service.
        service: String,
    },
}

/// A journal as read back.
#[derive(Debug, Default)]
pub(crate) struct Contents {
    /// The sound records, in order.
    pub(crate) records: Vec<Record>,
    /// Bytes up to the end of the last sound record.
    pub(crate) sound_len: u64,
    /// What was wrong with the rest, when something was: a torn tail to cut.
    pub(crate) torn: Option<String>,
}

/// The line for `record`.
pub(crate) fn encode(record: &Record) -> Result<Vec<u8>, serde_json::Error> {
    let json = serde_json::to_vec(record)?;
    let mut line = format!("{:08x} ", crc32(&json)).into_bytes();
    line.extend_from_slice(&json);
    line.push(b'\n');
    Ok(line)
}

/// Parses a journal's bytes. `Err` names the damaged line when sound lines follow it.
pub(crate) fn decode(bytes: &[u8]) -> Result<Contents, String> {
    let mut out = Contents::default();
    let mut at = 0;
    let mut number = 0;
    while at < bytes.len() {
        number += 1;
        let Some(end) = bytes[at..].iter().position(|&b| b == b'\n').map(|i| at + i) else {
            out.torn = Some(format!("line {number} is incomplete ({} bytes without an end)", bytes.len() - at));
            break;
        };
        match parse(&bytes[at..end]) {
            Ok(record) => {
                out.records.push(record);
                at = end + 1;
                out.sound_len = at as u64;
            }
            Err(why) => {
                // Lines are appended and synced one at a time: only the last one can
                // have been cut short by a crash. A damaged line with more after it
                // is damage to acknowledged records.
                if bytes[end + 1..].iter().any(|&b| b != 0) {
                    return Err(format!("line {number} is damaged ({why}) and more lines follow it"));
                }
                out.torn = Some(format!("line {number} is damaged ({why})"));
                break;
            }
        }
    }
    Ok(out)
}

fn parse(line: &[u8]) -> Result<Record, String> {
    let (sum, json) = match line.iter().position(|&b| b == b' ') {
        Some(9..) | None => return Err("no checksum".into()),
        Some(i) => (&line[..i], &line[i + 1..]),
    };
    let sum = std::str::from_utf8(sum).ok().and_then(|s| u32::from_str_radix(s, 16).ok()).ok_or("bad checksum")?;
    if sum != crc32(json) {
        return Err("checksum mismatch".into());
    }
    serde_json::from_slice(json).map_err(|e| e.to_string())
}

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC_TABLE: [u32; 256] = crc_table();

/// CRC-32 (IEEE), as zlib computes it: ten lines rather than a crate.
fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |c, &b| CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ServiceState;
    use switchyard_config::Traffic;

    fn record(seq: u64) -> Record {
        let before = ServiceState::fresh(Traffic::all_to("blue", ["blue", "green"]));
        let mut after = before.clone();
        after.version = seq + 1;
        after.traffic = Traffic::all_to("green", ["blue", "green"]);
        Record { seq, changes: vec![Change::Update { service: "shop".into(), delta: Delta::between(&before, &after) }] }
    }

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn lines_round_trip() {
        let mut bytes = encode(&record(1)).unwrap();
        bytes.extend(encode(&record(2)).unwrap());
        let c = decode(&bytes).unwrap();
        assert_eq!(c.records, vec![record(1), record(2)]);
        assert_eq!(c.sound_len, bytes.len() as u64);
        assert!(c.torn.is_none());
    }

    #[test]
    fn a_torn_or_damaged_last_line_is_cut_and_a_damaged_middle_refused() {
        let one = encode(&record(1)).unwrap();
        let two = encode(&record(2)).unwrap();
        for cut in 1..two.len() {
            let mut bytes = one.clone();
            bytes.extend_from_slice(&two[..cut]);
            let c = decode(&bytes).unwrap();
            assert_eq!((c.records.len(), c.sound_len), (1, one.len() as u64), "cut at {cut}");
            assert!(c.torn.is_some());
        }
        let mut flipped = one.clone();
        flipped[20] ^= 1;
        let mut bytes = flipped.clone();
        let c = decode(&bytes).unwrap();
        assert_eq!((c.records.len(), c.sound_len), (0, 0));
        assert!(c.torn.unwrap().contains("line 1"));
        bytes.extend_from_slice(&two);
        let e = decode(&bytes).unwrap_err();
        assert!(e.contains("line 1") && e.contains("more lines follow"), "{e}");
        let two_bad = [flipped.clone(), flipped.clone()].concat();
        assert!(decode(&two_bad).is_err(), "two damaged lines are not a torn write");
        let zeros = [one.clone(), vec![0; 300]].concat();
        assert_eq!(decode(&zeros).unwrap().records.len(), 1);
    }
}
