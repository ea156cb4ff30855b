//! Tests of the encoder and decoder together: RFC 7541 Appendix C, random round trips with
//! tables kept in sync, the gRPC request head, and differential runs against the `hpack` crate.

use bytes::{Bytes, BytesMut};

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

type List = Vec<(Vec<u8>, Vec<u8>)>;

fn decode(d: &mut Decoder, block: &[u8]) -> List {
    let mut out = Vec::new();
    d.decode(&Bytes::copy_from_slice(block), 1 << 20, |f| {
        out.push((f.name.to_vec(), f.value.to_vec()))
    })
    .unwrap();
    out
}

fn list(fields: &[(&str, &str)]) -> List {
    fields
        .iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

fn encode(e: &mut Encoder, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut dst = BytesMut::new();
    e.encode(
        fields
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes(), Sensitivity::Normal)),
        &mut dst,
    );
    dst.to_vec()
}

/// The dynamic table as (name, value) pairs, newest first.
fn entries(t: &table::DynamicTable) -> List {
    (0..t.len())
        .map(|i| {
            let e = t.get(i).unwrap();
            (e.name.to_vec(), e.value.to_vec())
        })
        .collect()
}

#[test]
fn c2_field_representations() {
    // C.2.1 literal with indexing.
    let mut d = Decoder::new(4096);
    let block = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
    assert_eq!(
        decode(&mut d, &block),
        list(&[("custom-key", "custom-header")])
    );
    assert_eq!(d.table().size(), 55);
    // C.2.2 literal without indexing.
    let mut d = Decoder::new(4096);
    let block = hex("040c 2f73 616d 706c 652f 7061 7468");
    assert_eq!(decode(&mut d, &block), list(&[(":path", "/sample/path")]));
    assert_eq!(d.table().len(), 0);
    // C.2.3 never indexed.
    let mut d = Decoder::new(4096);
    let block = Bytes::from(hex("1008 7061 7373 776f 7264 0673 6563 7265 74"));
    let mut fields = Vec::new();
    d.decode(&block, 1000, |f| fields.push(f)).unwrap();
    assert_eq!(fields.len(), 1);
    assert_eq!(
        (&fields[0].name[..], &fields[0].value[..]),
        (&b"password"[..], &b"secret"[..])
    );
    assert!(fields[0].never_indexed);
    assert_eq!(d.table().len(), 0);
    // C.2.4 indexed.
    let mut d = Decoder::new(4096);
    assert_eq!(decode(&mut d, &[0x82]), list(&[(":method", "GET")]));
}

const REQUESTS: [&[(&str, &str)]; 3] = [
    &[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
    ],
    &[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
        ("cache-control", "no-cache"),
    ],
    &[
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/index.html"),
        (":authority", "www.example.com"),
        ("custom-key", "custom-value"),
    ],
];

/// Dynamic table after each request, newest first.
const REQUEST_TABLES: [&[(&str, &str)]; 3] = [
    &[(":authority", "www.example.com")],
    &[
        ("cache-control", "no-cache"),
        (":authority", "www.example.com"),
    ],
    &[
        ("custom-key", "custom-value"),
        ("cache-control", "no-cache"),
        (":authority", "www.example.com"),
    ],
];
const REQUEST_SIZES: [usize; 3] = [57, 110, 164];

const C3: [&str; 3] = [
    "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "8286 84be 5808 6e6f 2d63 6163 6865",
    "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
];

const C4: [&str; 3] = [
    "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
    "8286 84be 5886 a8eb 1064 9cbf",
    "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
];

#[test]
fn c3_c4_requests_decode() {
    for blocks in [C3, C4] {
        let mut d = Decoder::new(4096);
        for i in 0..3 {
            assert_eq!(
                decode(&mut d, &hex(blocks[i])),
                list(REQUESTS[i]),
                "request {i}"
            );
            assert_eq!(entries(d.table()), list(REQUEST_TABLES[i]));
            assert_eq!(d.table().size(), REQUEST_SIZES[i]);
        }
    }
}

#[test]
fn c4_requests_encode_byte_for_byte() {
    // Our policy (index new :authority and others, Huffman when shorter) is exactly C.4's.
    let mut e = Encoder::new();
    for i in 0..3 {
        assert_eq!(encode(&mut e, REQUESTS[i]), hex(C4[i]), "request {i}");
        assert_eq!(entries(e.table()), list(REQUEST_TABLES[i]));
    }
}

const RESPONSES: [&[(&str, &str)]; 3] = [
    &[
        (":status", "302"),
        ("cache-control", "private"),
        ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
        ("location", "https://www.example.com"),
    ],
    &[
        (":status", "307"),
        ("cache-control", "private"),
        ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
        ("location", "https://www.example.com"),
    ],
    &[
        (":status", "200"),
        ("cache-control", "private"),
        ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
        ("location", "https://www.example.com"),
        ("content-encoding", "gzip"),
        (
            "set-cookie",
            "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
        ),
    ],
];

const RESPONSE_TABLES: [&[(&str, &str)]; 3] = [
    &[
        ("location", "https://www.example.com"),
        ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
        ("cache-control", "private"),
        (":status", "302"),
    ],
    &[
        (":status", "307"),
        ("location", "https://www.example.com"),
        ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
        ("cache-control", "private"),
    ],
    &[
        (
            "set-cookie",
            "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
        ),
        ("content-encoding", "gzip"),
        ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
    ],
];
const RESPONSE_SIZES: [usize; 3] = [222, 222, 215];

const C5: [&str; 3] = [
    "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
     2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
     6c65 2e63 6f6d",
    "4803 3330 37c1 c0bf",
    "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
     54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
     5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
     3d31",
];

const C6: [&str; 3] = [
    "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
     2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
    "4883 640e ffc1 c0bf",
    "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
     77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
     9587 3160 65c0 03ed 4ee5 b106 3d50 07",
];

#[test]
fn c5_c6_responses_decode_with_eviction() {
    for blocks in [C5, C6] {
        let mut d = Decoder::new(256);
        for i in 0..3 {
            assert_eq!(
                decode(&mut d, &hex(blocks[i])),
                list(RESPONSES[i]),
                "response {i}"
            );
            assert_eq!(entries(d.table()), list(RESPONSE_TABLES[i]));
            assert_eq!(d.table().size(), RESPONSE_SIZES[i]);
        }
    }
}

#[test]
fn c5_c6_responses_encode_and_decode_back() {
    // Our policy differs (`date` is never indexed), so compare by decoding back.
    let mut e = Encoder::new();
    e.set_max_table_size(256);
    let mut d = Decoder::new(256);
    for (i, response) in RESPONSES.iter().enumerate() {
        let block = encode(&mut e, response);
        if i == 0 {
            assert_eq!(&block[..3], [0x3f, 0xe1, 0x01], "size update to 256 first");
        }
        assert_eq!(decode(&mut d, &block), list(response));
        assert_eq!(entries(d.table()), entries(e.table()));
    }
}

#[test]
fn c3_requests_encode_and_decode_back() {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    for request in REQUESTS {
        let block = encode(&mut e, request);
        assert_eq!(decode(&mut d, &block), list(request));
        assert_eq!(entries(d.table()), entries(e.table()));
    }
}

#[test]
fn grpc_request_head_shrinks_to_one_byte_per_field() {
    let head = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/pkg.Svc/Method"),
        (":authority", "host:port"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("grpc-accept-encoding", "gzip,deflate"),
        ("user-agent", "anygrpc/0.1"),
    ];
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    let first = encode(&mut e, &head);
    assert_eq!(decode(&mut d, &first), list(&head));
    for _ in 0..3 {
        let again = encode(&mut e, &head);
        assert_eq!(again.len(), head.len(), "one byte per field: {again:02x?}");
        assert!(again.iter().all(|b| b & 0x80 != 0), "all indexed");
        assert_eq!(decode(&mut d, &again), list(&head));
    }
    // A timeout rides along as a literal without growing the table.
    let mut with_timeout = head.to_vec();
    with_timeout.push(("grpc-timeout", "100m"));
    let before = e.table().len();
    let block = encode(&mut e, &with_timeout);
    assert_eq!(e.table().len(), before);
    assert_eq!(decode(&mut d, &block), list(&with_timeout));
    // Warm: the output buffer is the only memory touched; its capacity is reused.
    let mut dst = BytesMut::with_capacity(64);
    let fields = head.map(|(n, v)| (n.as_bytes(), v.as_bytes(), Sensitivity::Normal));
    e.encode(fields, &mut dst);
    let ptr = dst.as_ptr();
    dst.clear();
    e.encode(fields, &mut dst);
    assert_eq!(dst.as_ptr(), ptr);
}

/// A small xorshift PRNG: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, max_len: usize, alphabet: &[u8]) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len())])
            .collect()
    }
}

const NAMES: [&str; 12] = [
    ":path",
    ":authority",
    ":status",
    "content-type",
    "grpc-timeout",
    "grpc-status",
    "grpc-message",
    "authorization",
    "x-trace-id",
    "user-agent",
    "date",
    "te",
];

/// A random field: a name from `NAMES` or random, a value from a small pool or random (any byte,
/// to exercise every Huffman code), sometimes long enough to evict or skip the table.
fn random_field(rng: &mut Rng) -> (Vec<u8>, Vec<u8>, Sensitivity) {
    let any: Vec<u8> = (0..=255).collect();
    let name = if rng.below(4) == 0 {
        rng.bytes(20, b"abcdefghijklmnopqrstuvwxyz-0123456789")
    } else {
        NAMES[rng.below(NAMES.len())].as_bytes().to_vec()
    };
    let value = match rng.below(6) {
        0 => rng.bytes(8, &any),
        1 => rng.bytes(400, b"abcxyz0123/=+"),
        2 => rng.bytes(3000, b"AZaz09"),
        _ => [
            &b"0"[..],
            b"200",
            b"application/grpc",
            b"/a.B/C",
            b"trailers",
        ][rng.below(5)]
        .to_vec(),
    };
    let sensitivity = if rng.below(8) == 0 {
        Sensitivity::NeverIndexed
    } else {
        Sensitivity::Normal
    };
    (name, value, sensitivity)
}

#[test]
fn random_round_trips_keep_tables_in_sync() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for _connection in 0..30 {
        let mut e = Encoder::new();
        let mut d = Decoder::new(4096);
        for _block in 0..60 {
            if rng.below(10) == 0 {
                // The decoding side advertises a new SETTINGS_HEADER_TABLE_SIZE: the encoding
                // side applies it, the decoding side learns of the ACK, both before the block.
                let size = [0, 1, 64, 100, 256, 4096, 8192, 100_000][rng.below(8)];
                e.set_max_table_size(size);
                d.set_max_table_size(size);
            }
            let fields: Vec<_> = (0..rng.below(12)).map(|_| random_field(&mut rng)).collect();
            let mut dst = BytesMut::new();
            e.encode(
                fields.iter().map(|(n, v, s)| (&n[..], &v[..], *s)),
                &mut dst,
            );
            let mut got = Vec::new();
            d.decode(&dst.freeze(), usize::MAX, |f| got.push(f))
                .unwrap();
            assert_eq!(got.len(), fields.len());
            for (f, (name, value, sensitivity)) in got.iter().zip(&fields) {
                assert_eq!((&f.name[..], &f.value[..]), (&name[..], &value[..]));
                assert_eq!(f.never_indexed, *sensitivity == Sensitivity::NeverIndexed);
            }
            assert_eq!(entries(d.table()), entries(e.table()));
            assert_eq!(d.table().capacity(), e.table().capacity());
        }
    }
}

#[test]
fn differential_against_the_hpack_crate() {
    let mut rng = Rng(0xfeed_f00d_dead_beef);
    for _connection in 0..10 {
        let mut ours_enc = Encoder::new();
        let mut theirs_dec = hpack::Decoder::new();
        let mut theirs_enc = hpack::Encoder::new();
        let mut ours_dec = Decoder::new(4096);
        for _block in 0..30 {
            let fields: Vec<_> = (0..rng.below(10))
                .map(|_| random_field(&mut rng))
                .map(|(n, v, _)| (n, v))
                .collect();
            // Our encoder, their decoder.
            let mut dst = BytesMut::new();
            ours_enc.encode(
                fields
                    .iter()
                    .map(|(n, v)| (&n[..], &v[..], Sensitivity::Normal)),
                &mut dst,
            );
            assert_eq!(theirs_dec.decode(&dst).unwrap(), fields);
            // Their encoder, our decoder.
            let block = theirs_enc.encode(fields.iter().map(|(n, v)| (&n[..], &v[..])));
            assert_eq!(decode(&mut ours_dec, &block), fields);
        }
    }
}

#[test]
fn hpack_crate_huffman_output_decodes() {
    // Their Huffman decoder accepts our RFC C.4/C.6 encodings; ours accepts C.4 as sent by the
    // RFC (checked above). Here: our encoder with Huffman strings into their decoder, many sizes.
    let mut e = Encoder::new();
    let mut theirs = hpack::Decoder::new();
    for len in 0..200 {
        let value: Vec<u8> = (0..len).map(|i| b"etaoinshrdlu"[i % 12]).collect();
        let mut dst = BytesMut::new();
        e.encode([(&b"x-k"[..], &value[..], Sensitivity::Normal)], &mut dst);
        assert_eq!(theirs.decode(&dst).unwrap(), vec![(b"x-k".to_vec(), value)]);
    }
}

#[test]
fn fuzz_decode_survives_mutated_valid_blocks() {
    // Valid blocks from our encoder with a few bytes flipped reach deeper than random bytes.
    let mut rng = Rng(0x5eed_5eed_5eed_5eed);
    for _ in 0..1500 {
        let mut e = Encoder::new();
        let mut data = vec![rng.next() as u8];
        for _ in 0..rng.below(6) {
            let fields: Vec<_> = (0..rng.below(5)).map(|_| random_field(&mut rng)).collect();
            let mut dst = BytesMut::new();
            e.encode(
                fields.iter().map(|(n, v, s)| (&n[..], &v[..], *s)),
                &mut dst,
            );
            let mut block = dst.to_vec();
            block.truncate(254);
            for _ in 0..rng.below(3) {
                if !block.is_empty() {
                    let i = rng.below(block.len());
                    block[i] ^= 1 << rng.below(8);
                }
            }
            data.push(block.len() as u8);
            data.extend(block);
        }
        fuzz_decode(&data);
    }
}
