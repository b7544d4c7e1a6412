//! The entry format: postcard bytes in a frame with a magic, a version,
//! the payload's length and its SHA-256, so that a torn, truncated or
//! altered entry is told from a good one.

use sha2::{Digest as _, Sha256};

/// The first bytes of every entry.
const MAGIC: &[u8; 4] = b"DLYC";
/// The frame's version: bumped when the layout changes.
const VERSION: u8 = 1;
/// Magic, version, length (u64 LE), SHA-256.
const HEADER: usize = 4 + 1 + 8 + 32;

/// The SHA-256 of an entry's payload: a cached output's *output digest*.
pub type Digest = [u8; 32];

/// The SHA-256 of `bytes`.
pub(crate) fn digest(bytes: &[u8]) -> Digest {
    Sha256::digest(bytes).into()
}

/// `payload` in a frame, and its digest.
pub(crate) fn frame(payload: &[u8]) -> (Digest, Vec<u8>) {
    let digest = digest(payload);
    let mut entry = Vec::with_capacity(HEADER + payload.len());
    entry.extend_from_slice(MAGIC);
    entry.push(VERSION);
    entry.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    entry.extend_from_slice(&digest);
    entry.extend_from_slice(payload);
    (digest, entry)
}

/// The payload of a framed entry, or why it is not a good entry.
pub(crate) fn unframe(entry: &[u8]) -> Result<(&[u8], Digest), &'static str> {
    if entry.len() < HEADER {
        return Err("the entry is shorter than its header");
    }
    if &entry[..4] != MAGIC {
        return Err("the entry does not start with the cache's magic bytes");
    }
    if entry[4] != VERSION {
        return Err("the entry was written by another version of the format");
    }
    let len = u64::from_le_bytes(entry[5..13].try_into().expect("8 bytes"));
    let payload = &entry[HEADER..];
    if payload.len() as u64 != len {
        return Err("the entry is truncated or too long");
    }
    let mut stated = [0; 32];
    stated.copy_from_slice(&entry[13..HEADER]);
    if digest(payload) != stated {
        return Err("the entry's checksum does not match its bytes");
    }
    Ok((payload, stated))
}

/// A digest as lowercase hex.
pub(crate) fn hex(digest: &[u8]) -> String {
    let mut out = String::with_capacity(digest.len() * 2);
    for byte in digest {
        out.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
    }
    out
}

/// A digest from lowercase hex.
pub(crate) fn unhex(text: &str) -> Option<Digest> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_and_rejects_any_change() {
        let (digest, entry) = frame(b"hello");
        assert_eq!(unframe(&entry), Ok((&b"hello"[..], digest)));
        assert!(unframe(&entry[..entry.len() - 1]).is_err());
        assert!(unframe(&entry[..10]).is_err());
        let mut flipped = entry.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(unframe(&flipped).is_err());
        let mut magic = entry;
        magic[0] = b'X';
        assert!(unframe(&magic).is_err());
        assert_eq!(unhex(&hex(&digest)), Some(digest));
    }
}
