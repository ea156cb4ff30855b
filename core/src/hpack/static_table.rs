//! The HPACK static table (RFC 7541 §2.3.1, Appendix A): indices 1..=61.

/// Number of entries; the dynamic table starts at index `LEN + 1` (§2.3.3).
pub(crate) const LEN: usize = 61;

/// Appendix A, in order: entry `i` (0-based) has HPACK index `i + 1`.
const ENTRIES: [(&[u8], &[u8]); LEN] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// The entry at HPACK index `index` (1..=61), or `None` outside the static range.
pub(crate) fn get(index: usize) -> Option<(&'static [u8], &'static [u8])> {
    ENTRIES.get(index.checked_sub(1)?).copied()
}

/// What the static table holds for a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Match {
    /// Name and value match the entry at this index.
    Full(usize),
    /// Only the name matches, first at this index.
    Name(usize),
}

/// Looks `name`/`value` up: a full match if any entry has both, else the first entry with the
/// name. The name dispatch is a `match`, so a lookup costs one comparison chain, not a scan.
pub(crate) fn find(name: &[u8], value: &[u8]) -> Option<Match> {
    let (first, last) = name_range(name)?;
    let full = (first..=last).find(|&i| get(i).is_some_and(|(_, v)| v == value));
    Some(full.map_or(Match::Name(first), Match::Full))
}

/// The indices `first..=last` whose entries carry `name`.
fn name_range(name: &[u8]) -> Option<(usize, usize)> {
    let range = match name {
        b":authority" => (1, 1),
        b":method" => (2, 3),
        b":path" => (4, 5),
        b":scheme" => (6, 7),
        b":status" => (8, 14),
        b"accept-charset" => (15, 15),
        b"accept-encoding" => (16, 16),
        b"accept-language" => (17, 17),
        b"accept-ranges" => (18, 18),
        b"accept" => (19, 19),
        b"access-control-allow-origin" => (20, 20),
        b"age" => (21, 21),
        b"allow" => (22, 22),
        b"authorization" => (23, 23),
        b"cache-control" => (24, 24),
        b"content-disposition" => (25, 25),
        b"content-encoding" => (26, 26),
        b"content-language" => (27, 27),
        b"content-length" => (28, 28),
        b"content-location" => (29, 29),
        b"content-range" => (30, 30),
        b"content-type" => (31, 31),
        b"cookie" => (32, 32),
        b"date" => (33, 33),
        b"etag" => (34, 34),
        b"expect" => (35, 35),
        b"expires" => (36, 36),
        b"from" => (37, 37),
        b"host" => (38, 38),
        b"if-match" => (39, 39),
        b"if-modified-since" => (40, 40),
        b"if-none-match" => (41, 41),
        b"if-range" => (42, 42),
        b"if-unmodified-since" => (43, 43),
        b"last-modified" => (44, 44),
        b"link" => (45, 45),
        b"location" => (46, 46),
        b"max-forwards" => (47, 47),
        b"proxy-authenticate" => (48, 48),
        b"proxy-authorization" => (49, 49),
        b"range" => (50, 50),
        b"referer" => (51, 51),
        b"refresh" => (52, 52),
        b"retry-after" => (53, 53),
        b"server" => (54, 54),
        b"set-cookie" => (55, 55),
        b"strict-transport-security" => (56, 56),
        b"transfer-encoding" => (57, 57),
        b"user-agent" => (58, 58),
        b"vary" => (59, 59),
        b"via" => (60, 60),
        b"www-authenticate" => (61, 61),
        _ => return None,
    };
    Some(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert_eq!(get(0), None);
        assert_eq!(get(1), Some((&b":authority"[..], &b""[..])));
        assert_eq!(get(61), Some((&b"www-authenticate"[..], &b""[..])));
        assert_eq!(get(62), None);
        assert_eq!(get(usize::MAX), None);
    }

    #[test]
    fn find_agrees_with_a_scan_of_the_table() {
        for i in 1..=LEN {
            let (name, value) = get(i).unwrap();
            let first_full = (1..=LEN).find(|&j| get(j) == Some((name, value))).unwrap();
            let first_name = (1..=LEN).find(|&j| get(j).unwrap().0 == name).unwrap();
            assert_eq!(
                find(name, value),
                Some(Match::Full(first_full)),
                "index {i}"
            );
            assert_eq!(find(name, b"\x00other"), Some(Match::Name(first_name)));
        }
        assert_eq!(find(b"grpc-status", b"0"), None);
        assert_eq!(find(b":Method", b"GET"), None, "names are case-sensitive");
    }

    #[test]
    fn hpack_crate_has_the_same_table() {
        let mut theirs = hpack::Decoder::new();
        for i in 1..=LEN {
            if i == 15 {
                // hpack 0.3 has "accept-" at 15; Appendix A says "accept-charset".
                continue;
            }
            let block = [0x80 | i as u8];
            let (name, value) = get(i).unwrap();
            assert_eq!(
                theirs.decode(&block).unwrap(),
                vec![(name.to_vec(), value.to_vec())]
            );
        }
    }
}
